-- Rollout store, SQLite mirror of migrations/postgres (same tables and columns; JSON as TEXT,
-- timestamps as ISO-8601 TEXT). Never edit once applied: add a new migration instead.

CREATE TABLE runs (
    run_id      TEXT PRIMARY KEY,
    method      TEXT NOT NULL,
    model       TEXT NOT NULL,
    config      TEXT NOT NULL,
    git_rev     TEXT,
    started_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    finished_at TEXT
);

CREATE TABLE steps (
    run_id                   TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    step                     INTEGER NOT NULL,
    reward_mean              REAL NOT NULL,
    accuracy                 REAL NOT NULL,
    entropy                  REAL NOT NULL,
    loss                     REAL NOT NULL,
    grad_norm                REAL NOT NULL,
    clip_frac_low            REAL NOT NULL,
    clip_frac_high           REAL NOT NULL,
    response_len_mean        REAL NOT NULL,
    steer_w_mean             REAL NOT NULL,
    steer_w_min              REAL NOT NULL,
    steer_w_max              REAL NOT NULL,
    steer_w_frac_below_099   REAL NOT NULL,
    predicted_entropy_change REAL NOT NULL,
    skipped                  BOOLEAN NOT NULL,
    timings                  TEXT NOT NULL,
    created_at               TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (run_id, step)
);

CREATE TABLE rollouts (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id          TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    step            INTEGER NOT NULL,
    prompt_id       TEXT NOT NULL,
    sample_idx      INTEGER NOT NULL,
    prompt          TEXT NOT NULL,
    response        TEXT NOT NULL,
    ground_truth    TEXT NOT NULL,
    num_tokens      INTEGER NOT NULL,
    finished        BOOLEAN NOT NULL,
    reward          REAL NOT NULL,
    verdict         TEXT NOT NULL,
    extracted       TEXT,
    verifier_result TEXT NOT NULL,
    advantage       REAL NOT NULL,
    mean_entropy    REAL NOT NULL,
    created_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    CONSTRAINT rollouts_unique_sample UNIQUE (run_id, step, prompt_id, sample_idx)
);

CREATE INDEX rollouts_run_verdict ON rollouts (run_id, verdict);
CREATE INDEX rollouts_run_prompt ON rollouts (run_id, prompt_id, step);
