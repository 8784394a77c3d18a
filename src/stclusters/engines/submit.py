"""Entry point for ``spark-submit``: the ``stclusters`` command line, on the submitted master.

Example::

    spark-submit --master spark://host:7077 \\
        "$(python -c 'import stclusters.engines.submit as m; print(m.__file__)')" \\
        rank works/ --out out --engine spark
"""

from stclusters.cli import app

if __name__ == "__main__":
    app()
