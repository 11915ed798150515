import dagster as dg

# One partition per landing batch, added by the intake sensor as batches arrive.
intake_batches = dg.DynamicPartitionsDefinition(name="intake_batches")
