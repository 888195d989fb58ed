-- V1: the warehouse's two schemas.
--
-- A versioned script (V<version>__<description>.sql) runs exactly once per database, in
-- version order, inside one transaction together with its row in flyway_schema_history:
-- either all of it is applied and recorded, or none of it.
--
--   staging    raw rows as they arrive (COPY from S3 on Redshift), typed loosely
--   analytics  the star schema that reports query: dimensions and facts

create schema staging;

create schema analytics;
