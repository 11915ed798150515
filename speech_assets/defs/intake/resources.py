"""The landing zone as a Dagster resource: where new batches appear."""


from pathlib import Path

import dagster as dg

from speech_assets.intake.landing import LandingBatch, scan_landing
from speech_assets.settings import landing_dir


class LandingZoneResource(dg.ConfigurableResource):
    path: str = ""

    @property
    def root(self) -> Path:
        return Path(self.path) if self.path else landing_dir()

    def ready_batches(self) -> list[LandingBatch]:
        return scan_landing(self.root)

    def batch(self, batch_id: str) -> LandingBatch:
        for candidate in self.ready_batches():
            if candidate.batch_id == batch_id:
                return candidate
        raise dg.Failure(
            description=f"no ready landing batch with id {batch_id!r} under {self.root}",
            metadata={"landing_dir": str(self.root)},
        )


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(resources={"landing": LandingZoneResource()})
