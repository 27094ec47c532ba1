-- The data source of each rollout's prompt (its row's `data_source`; '' for rows stored before
-- this column), and the audit view that breaks a run down by data source and verdict (same SQL
-- on Postgres and SQLite). Never edit once applied.

ALTER TABLE rollouts ADD COLUMN data_source TEXT NOT NULL DEFAULT '';

CREATE INDEX rollouts_run_source ON rollouts (run_id, data_source, verdict);

-- Per data source and verdict: how many rollouts, their mean reward, and the run's steps they
-- span.
CREATE VIEW source_verdicts AS
SELECT run_id,
       data_source,
       verdict,
       COUNT(*) AS n,
       CAST(AVG(reward) AS DOUBLE PRECISION) AS reward_mean,
       MIN(step) AS first_step,
       MAX(step) AS last_step
FROM rollouts
GROUP BY run_id, data_source, verdict;
