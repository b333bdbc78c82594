-- Least privilege: two roles besides the owner (see README, "Security"):
--
--   orderstream_writer   the consumer: read and write the tables it writes;
--                        no DDL, no DELETE, no TRUNCATE.
--   orderstream_analyst  Metabase, the report, the lag exporter: SELECT on the
--                        analysis_* views and pipeline_freshness only, never
--                        the base tables (dead letters' payloads, offsets).
--
-- Created here NOLOGIN when missing (a local cluster): nobody logs in as them
-- there, a login role that is a member gets their rights. Deployment creates
-- them beforehand as LOGIN roles with passwords (compose/postgres/), or
-- creates other login roles IN ROLE these; an existing role is left as it is.
--
-- The migration owner is whoever runs the migrations (`orderstream-consumer
-- migrate`): the login that owns the database. It owns every object, so only
-- it can change them.
--
-- Roles are cluster-wide and this runs once per database (many databases may
-- share a cluster, and migrate at the same time): a role is created only when
-- missing, and a concurrent creation by another database's migration is not
-- an error. Creating them needs CREATEROLE; when deployment created them
-- beforehand, the owner needs no such right. Grants are per database.
DO $$
DECLARE
    role_name text;
BEGIN
    FOREACH role_name IN ARRAY ARRAY['orderstream_writer', 'orderstream_analyst'] LOOP
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = role_name) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', role_name);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL; -- created meanwhile by a migration of another database
            END;
        END IF;
    END LOOP;
END
$$;

-- Nobody but the owner creates objects in the schema (PostgreSQL 15 and later
-- already grant no CREATE to PUBLIC; older ones did).
REVOKE CREATE ON SCHEMA public FROM PUBLIC;

DO $$
BEGIN
    EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO orderstream_writer', current_database());
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO orderstream_analyst', current_database());
END
$$;
GRANT USAGE ON SCHEMA public TO orderstream_writer, orderstream_analyst;

-- The consumer: the upsert (INSERT … ON CONFLICT, SELECT … FOR UPDATE), the
-- offsets, the dead letters and their redrive; reading the applied
-- migrations, to start without migrating when the schema is current.
GRANT SELECT, INSERT, UPDATE ON orders, consumer_offsets, dead_letters TO orderstream_writer;
GRANT USAGE ON SEQUENCE dead_letters_id_seq TO orderstream_writer;
GRANT SELECT ON orderstream_migrations TO orderstream_writer;

-- What the data-quality question needs from the dead letters: when and why,
-- never the payload (it may hold anything an export contained).
CREATE VIEW analysis_dead_letters AS
SELECT created_at, reason, redriven_at
FROM dead_letters;

-- How fresh the data is, for the lag exporter: one timestamp, no order.
CREATE VIEW pipeline_freshness AS
SELECT max(read_at) AS newest_read_at
FROM orders;

-- Analysts read the views (which run with their owner's rights), nothing else.
GRANT SELECT ON analysis_orders, analysis_anchor, analysis_customer_orders, analysis_dead_letters,
                pipeline_freshness
    TO orderstream_analyst;
GRANT SELECT ON pipeline_freshness TO orderstream_writer;
