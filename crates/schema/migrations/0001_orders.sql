-- The orders table: one row per order id, the newest version of it.
-- Money is NUMERIC(12,2): exact to the cent, never a float.
CREATE TABLE orders (
    id             BIGINT        PRIMARY KEY,
    user_id        BIGINT        NOT NULL,
    completed_at   TIMESTAMPTZ   NOT NULL,
    item_total     NUMERIC(12,2) NOT NULL CHECK (item_total >= 0),
    shipment_total NUMERIC(12,2) NOT NULL CHECK (shipment_total >= 0),
    -- Where this version came from, so every row can be traced to its line.
    source_file    TEXT          NOT NULL,
    source_line    BIGINT        NOT NULL,
    source_offset  BIGINT        NOT NULL,
    -- When the producer read the line, and when this row was last written:
    -- their difference is the pipeline's end-to-end latency.
    read_at        TIMESTAMPTZ   NOT NULL,
    written_at     TIMESTAMPTZ   NOT NULL DEFAULT clock_timestamp()
);

COMMENT ON TABLE orders IS 'Orders ingested by orderstream; one row per order id.';
