-- steer-coupled's telemetry: the predicted (output-head NTK, one SGD step of size lr) and the
-- realised change of each step's batch token-mean entropy, nats. NULL for other methods.
ALTER TABLE steps ADD COLUMN coupled_predicted_entropy_change REAL;
ALTER TABLE steps ADD COLUMN realised_entropy_change REAL;
