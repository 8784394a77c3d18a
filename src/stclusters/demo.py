"""The demo: the whole pipeline on the real samples in ``../shared/data`` and on a seeded
synthetic world (labelled SYNTHETIC everywhere it is written)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from stclusters.params import RankParams

#: Share of the sample's own world total a point's neighbourhood must reach to be core. The
#: world-scale default (0.02 %) would make every sample point core; the samples hold a few
#: hundred documents, so we scale the threshold to their size.
SAMPLE_MIN_WEIGHT_SHARE_PCT = 1.0


def find_shared_data() -> Path | None:
    """The shared data folder: ``$STCLUSTERS_SHARED_DATA``, else ``../shared/data`` next to
    the working directory or the source checkout; None when absent."""
    env = os.environ.get("STCLUSTERS_SHARED_DATA")
    candidates = [Path(env)] if env else []
    here = Path(__file__).resolve()
    candidates += [Path.cwd() / ".." / "shared" / "data", Path.cwd() / "shared" / "data",
                   here.parents[3] / "shared" / "data" if len(here.parents) > 3 else None,
                   here.parents[2] / ".." / "shared" / "data" if len(here.parents) > 2 else None]
    for c in candidates:
        if c is not None and (c / "samples").is_dir():
            return c.resolve()
    return None


@dataclass(frozen=True)
class SampleInputs:
    patents: list[Path]
    publications: list[Path]

    @property
    def all(self) -> list[Path]:
        return self.patents + self.publications


def sample_inputs(shared: Path) -> SampleInputs:
    """The USPTO grant XML files and the OpenAlex works sample."""
    return SampleInputs(sorted((shared / "samples" / "uspto").glob("*.xml.gz")),
                        sorted((shared / "samples" / "openalex").glob("*.json*")))


#: What the sample run changes from the defaults, said in its output.
SAMPLE_NOTES = (
    f"thresholds scaled to the samples' size: min_weight = {SAMPLE_MIN_WEIGHT_SHARE_PCT}% of "
    "each source's world total",
    "all publication types kept: the OpenAlex sample holds books, monographs, proceedings "
    "and dissertations but no journal articles, and the default keeps journal articles only "
    "(as the GII)",
)


def sample_params() -> RankParams:
    """Default parameters with thresholds scaled to the samples' size, all work types."""
    p = RankParams().with_source("patent", min_weight_share_pct=SAMPLE_MIN_WEIGHT_SHARE_PCT)
    return p.with_source("publication", min_weight_share_pct=SAMPLE_MIN_WEIGHT_SHARE_PCT,
                         doc_types=None)
