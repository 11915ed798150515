"""Intake gates. The batch data contract is emitted by `raw_audio` itself (it must run between the
branch commit and the merge into main, inside one step), so its spec lives here and the asset reports it."""

import dagster as dg

from speech_assets.defs.storage.resources import VersionStoreResource

BATCH_CONTRACT_CHECK = "batch_data_contract"

batch_contract_spec = dg.AssetCheckSpec(
    BATCH_CONTRACT_CHECK,
    asset="raw_audio",
    blocking=True,
    description=(
        "soda-core data contract (speech_assets/intake/contracts/batch_metadata.yml) on the batch's metadata "
        "table at its branch commit. Only a passing batch is merged into main; a failing one stays on its branch."
    ),
)


@dg.asset_check(asset="audio_manifest", blocking=True, description="train/dev/test share no speaker")
def manifest_speaker_disjoint(store: VersionStoreResource) -> dg.AssetCheckResult:
    import io

    import pyarrow.parquet as pq

    from speech_assets.storage.base import DEFAULT_BRANCH
    from speech_assets.storage.layout import MANIFEST_PATH

    vs = store.open()
    table = pq.read_table(io.BytesIO(vs.get_object(store.repository, DEFAULT_BRANCH, MANIFEST_PATH)))
    splits_by_speaker: dict[str, set[str]] = {}
    for key, split in zip(table.column("speaker_key").to_pylist(), table.column("split").to_pylist()):
        splits_by_speaker.setdefault(key, set()).add(split)
    leaking = sorted(k for k, v in splits_by_speaker.items() if len(v) > 1)
    return dg.AssetCheckResult(
        passed=not leaking,
        metadata={"speakers": len(splits_by_speaker), "speakers_in_several_splits": len(leaking),
                  "examples": ", ".join(leaking[:5])},
    )
