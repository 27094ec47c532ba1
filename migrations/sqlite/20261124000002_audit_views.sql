-- Audit views (same SQL on Postgres and SQLite). Never edit once applied.

-- Per-step reward, accuracy, entropy and length, from the rollouts themselves.
CREATE VIEW step_rewards AS
SELECT run_id,
       step,
       COUNT(*) AS rollouts,
       CAST(AVG(reward) AS DOUBLE PRECISION) AS reward_mean,
       CAST(AVG(CASE WHEN verdict IN ('correct', 'accepted') THEN 1.0 ELSE 0.0 END) AS DOUBLE PRECISION) AS accuracy,
       CAST(AVG(mean_entropy) AS DOUBLE PRECISION) AS entropy_mean,
       CAST(AVG(CAST(num_tokens AS DOUBLE PRECISION)) AS DOUBLE PRECISION) AS tokens_mean
FROM rollouts
GROUP BY run_id, step;

-- How many rollouts got each verdict, per step.
CREATE VIEW verdict_mix AS
SELECT run_id, step, verdict, COUNT(*) AS n
FROM rollouts
GROUP BY run_id, step, verdict;

-- Per prompt and step: how many samples, and the fraction rewarded.
CREATE VIEW prompt_solve_rate AS
SELECT run_id,
       prompt_id,
       step,
       COUNT(*) AS samples,
       CAST(AVG(CASE WHEN reward > 0 THEN 1.0 ELSE 0.0 END) AS DOUBLE PRECISION) AS solve_rate
FROM rollouts
GROUP BY run_id, prompt_id, step;
