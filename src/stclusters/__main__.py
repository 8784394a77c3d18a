from stclusters.cli import app

app()
