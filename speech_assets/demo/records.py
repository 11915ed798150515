"""What the Dagster instance recorded, read the way the demo reports it: the latest materializations of an asset
(optionally of one partition) and the values of their metadata."""

from __future__ import annotations


def latest(instance, key: str, partition: str | None = None):
    """The newest materialization record of asset `key` (of `partition`), or None."""
    import dagster as dg

    flt = dg.AssetRecordsFilter(asset_key=dg.AssetKey(key), asset_partitions=[partition] if partition else None)
    records = instance.fetch_materializations(flt, limit=1).records
    return records[0] if records else None


def latest_after(instance, key: str, partition: str, after_record):
    """The newest materialization of `key`/`partition` if it was stored after `after_record`, else None."""
    rec = latest(instance, key, partition)
    return rec if rec is not None and rec.storage_id > after_record.storage_id else None


def since(instance, key: str, partition: str | None, after: float) -> list:
    """The (up to five) newest materializations of `key` (of `partition`) stamped after the time `after`."""
    import dagster as dg

    flt = dg.AssetRecordsFilter(asset_key=dg.AssetKey(key), asset_partitions=[partition] if partition else None)
    return [r for r in instance.fetch_materializations(flt, limit=5).records if r.timestamp > after]


def meta(record, name: str):
    """The value of metadata entry `name` of a materialization record; None when it has none."""
    entry = record.asset_materialization.metadata.get(name)
    return None if entry is None else entry.value


def metadata(record) -> dict:
    """Every metadata entry of a materialization record, by name, as plain values."""
    return {k: v.value for k, v in record.asset_materialization.metadata.items()}
