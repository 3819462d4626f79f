-- Market data by trading day: corporate-action events on prices, daily universe
-- membership, point-in-time fundamentals, news, a quarantine for rejected rows, and the
-- synthetic market's oracle in a schema of its own (never read by feature code).

ALTER TABLE vfr_ml.raw_prices
    ADD COLUMN IF NOT EXISTS dividend double precision NOT NULL DEFAULT 0 CHECK (dividend >= 0),
    ADD COLUMN IF NOT EXISTS split_ratio double precision NOT NULL DEFAULT 1 CHECK (split_ratio > 0);

ALTER TABLE vfr_ml.universe
    ADD COLUMN IF NOT EXISTS name text,
    ADD COLUMN IF NOT EXISTS delisted_on date;

CREATE TABLE IF NOT EXISTS vfr_ml.universe_membership (
    trade_date date NOT NULL,
    symbol varchar(20) NOT NULL,
    sector text NOT NULL,
    source text NOT NULL,
    PRIMARY KEY (trade_date, symbol)
);

-- One row per filed report; an amended report of the same period is a second row with a
-- later filing_date, so "what was known on day D" stays answerable.
CREATE TABLE IF NOT EXISTS vfr_ml.raw_fundamentals (
    symbol varchar(20) NOT NULL,
    period_end date NOT NULL,
    filing_date date NOT NULL,
    fiscal_period text,
    revenue double precision,
    gross_profit double precision,
    operating_income double precision,
    ebitda double precision,
    net_income double precision,
    interest_expense double precision,
    eps double precision,
    total_assets double precision,
    total_debt double precision,
    cash double precision,
    current_assets double precision,
    current_liabilities double precision,
    inventory double precision,
    book_value double precision,
    free_cash_flow double precision,
    shares_outstanding double precision CHECK (shares_outstanding > 0),
    dividends_paid double precision,
    source text NOT NULL,
    loaded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (symbol, period_end, filing_date),
    CHECK (filing_date >= period_end)
);
CREATE INDEX IF NOT EXISTS raw_fundamentals_filing_date ON vfr_ml.raw_fundamentals (filing_date);

CREATE TABLE IF NOT EXISTS vfr_ml.raw_news (
    trade_date date NOT NULL,
    symbol varchar(20) NOT NULL,
    published_at timestamptz NOT NULL,
    headline text NOT NULL CHECK (headline <> ''),
    headline_md5 char(32) NOT NULL,
    source text,
    url text,
    provider text NOT NULL,
    loaded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (trade_date, symbol, published_at, headline_md5)
);

CREATE TABLE IF NOT EXISTS vfr_ml.quarantine (
    id bigserial PRIMARY KEY,
    dataset text NOT NULL,
    provider text NOT NULL,
    partition_start date NOT NULL,
    partition_end date NOT NULL,
    symbol text,
    day date,
    field text,
    reason text NOT NULL,
    raw jsonb NOT NULL,
    run_id text,
    rejected_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS quarantine_dataset_range ON vfr_ml.quarantine (dataset, partition_start, partition_end);

CREATE SCHEMA IF NOT EXISTS vfr_ml_oracle;
CREATE TABLE IF NOT EXISTS vfr_ml_oracle.expected_returns (
    horizon varchar(4) NOT NULL,
    trade_date date NOT NULL,
    symbol varchar(20) NOT NULL,
    expected_return double precision NOT NULL,
    PRIMARY KEY (horizon, trade_date, symbol)
);
