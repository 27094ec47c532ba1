-- Rollout store, Postgres. Never edit once applied: add a new migration instead.

-- One row per training run.
CREATE TABLE runs (
    run_id      TEXT PRIMARY KEY,
    method      TEXT NOT NULL,
    model       TEXT NOT NULL,
    config      JSONB NOT NULL,              -- the resolved training config
    git_rev     TEXT,
    started_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at TIMESTAMPTZ
);

-- One row per optimizer step.
CREATE TABLE steps (
    run_id                   TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    step                     INTEGER NOT NULL,
    reward_mean              DOUBLE PRECISION NOT NULL,
    accuracy                 DOUBLE PRECISION NOT NULL,
    entropy                  DOUBLE PRECISION NOT NULL,   -- token-mean entropy under pi_old, nats
    loss                     DOUBLE PRECISION NOT NULL,
    grad_norm                DOUBLE PRECISION NOT NULL,   -- before clipping
    clip_frac_low            DOUBLE PRECISION NOT NULL,
    clip_frac_high           DOUBLE PRECISION NOT NULL,
    response_len_mean        DOUBLE PRECISION NOT NULL,   -- tokens
    steer_w_mean             DOUBLE PRECISION NOT NULL,
    steer_w_min              DOUBLE PRECISION NOT NULL,
    steer_w_max              DOUBLE PRECISION NOT NULL,
    steer_w_frac_below_099   DOUBLE PRECISION NOT NULL,
    predicted_entropy_change DOUBLE PRECISION NOT NULL,   -- sum over tokens, without -lr/L
    skipped                  BOOLEAN NOT NULL,            -- non-finite gradient norm
    timings                  JSONB NOT NULL,              -- seconds per phase
    created_at               TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, step)
);

-- One row per graded response; (run, step, prompt, sample) is unique so replays upsert.
CREATE TABLE rollouts (
    id              BIGSERIAL PRIMARY KEY,
    run_id          TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    step            INTEGER NOT NULL,
    prompt_id       TEXT NOT NULL,
    sample_idx      INTEGER NOT NULL,
    prompt          TEXT NOT NULL,
    response        TEXT NOT NULL,
    ground_truth    TEXT NOT NULL,
    num_tokens      INTEGER NOT NULL,
    finished        BOOLEAN NOT NULL,                -- ended with EOS (not truncated)
    reward          DOUBLE PRECISION NOT NULL,
    verdict         TEXT NOT NULL,
    extracted       TEXT,
    verifier_result JSONB NOT NULL,                  -- the verifier's full result object
    advantage       DOUBLE PRECISION NOT NULL,
    mean_entropy    DOUBLE PRECISION NOT NULL,       -- over this response's tokens, nats
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT rollouts_unique_sample UNIQUE (run_id, step, prompt_id, sample_idx)
);

CREATE INDEX rollouts_run_verdict ON rollouts (run_id, verdict);
CREATE INDEX rollouts_run_prompt ON rollouts (run_id, prompt_id, step);
