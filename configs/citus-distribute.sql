-- Distributes the collector's schema by device on Citus (docs/fleet.md, "Sharding by
-- device"). Run once on the coordinator, in the collector's database, after
-- `assent-collector migrate` and before the first `serve`; the citus extension must
-- exist there and the workers be added. collector/tests/citus.rs runs this file.
--
-- Every table keyed by device is distributed on it and co-located with `devices`, so
-- an ingest's or an erasure's statements for one device stay on one shard group.
-- The console's two roll-ups carry no device: they stay local tables on the
-- coordinator (a few rows a day, written by every ingest transaction).
SELECT create_distributed_table('devices', 'pseudonym');
SELECT create_distributed_table('buffers', 'device', colocate_with => 'devices');
SELECT create_distributed_table('events', 'device', colocate_with => 'devices');
SELECT create_distributed_table('gaps', 'device', colocate_with => 'devices');
SELECT create_distributed_table('consent_records', 'device', colocate_with => 'devices');
SELECT create_distributed_table('erasure_log', 'device', colocate_with => 'devices');
SELECT create_distributed_table('erasure_fences', 'device', colocate_with => 'devices');
SELECT create_distributed_table('device_days', 'device', colocate_with => 'devices');
