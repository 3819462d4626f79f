-- The kill switch's memory of VFR's live path: the `ml_models` rows of this project it
-- took out of `deployed` (VFR's live ensemble runs every deployed row), and when they were
-- deployed again. The live-model export of a republish restores them.
CREATE TABLE IF NOT EXISTS vfr_ml.live_path_switch (
    id bigserial PRIMARY KEY,
    model_name text NOT NULL,
    model_version text NOT NULL,
    disabled_at timestamptz NOT NULL DEFAULT now(),
    restored_at timestamptz
);
CREATE INDEX IF NOT EXISTS live_path_switch_open ON vfr_ml.live_path_switch (model_name, model_version) WHERE restored_at IS NULL;
