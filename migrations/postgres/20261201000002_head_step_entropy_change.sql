-- steer-coupled's telemetry: the first-order change of each step's batch token-mean entropy
-- through the output head along the optimizer's actual update of it, nats. NULL for other methods.
ALTER TABLE steps ADD COLUMN head_step_entropy_change DOUBLE PRECISION;
