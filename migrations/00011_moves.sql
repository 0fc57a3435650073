-- Workflow moves without a held transaction, and outbox rows that lock
-- nothing shared.
--
-- Every report event counts up the report's revision, so a move can read
-- a report, decide, and write only if nothing moved it meanwhile.
--
-- Every report event writes an outbox row for each of its departments with
-- a webhook. A foreign key made each of those share-lock the department's
-- row, and with many events at once for one department (the city
-- management office handles most reports) every writer queued on that one
-- row: PostgreSQL records concurrent share locks as a MultiXact written into
-- the row. An outbox row keeps the code and the webhook address it was
-- written with; deliveries are made for departments that still exist, with
-- the secret read by code. (Report-in tasks, written only by escalations,
-- keep their key.)
--
-- Each event's notice computes the report's box from the row it writes;
-- report_boxes, a function querying the reports again, is no longer used.

-- +goose Up
ALTER TABLE reports ADD COLUMN revision bigint NOT NULL DEFAULT 0;
ALTER TABLE outbox DROP CONSTRAINT outbox_department_fkey;
DROP FUNCTION report_boxes;

-- +goose Down
-- +goose StatementBegin
CREATE FUNCTION report_boxes(ids bigint[]) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN count(*) <= 100 THEN
        json_build_object('boxes', coalesce(json_agg(json_build_array(
            ST_XMin(location), ST_YMin(location), ST_XMax(location), ST_YMax(location))), '[]'))::text
    ELSE json_build_object('boxes', json_build_array(json_build_array(
            min(ST_XMin(location)), min(ST_YMin(location)), max(ST_XMax(location)), max(ST_YMax(location)))))::text
    END
    FROM reports WHERE id = ANY(ids)
$$;
-- +goose StatementEnd
DELETE FROM outbox o WHERE NOT EXISTS (SELECT 1 FROM departments d WHERE d.code = o.department);
ALTER TABLE outbox ADD CONSTRAINT outbox_department_fkey FOREIGN KEY (department) REFERENCES departments (code) ON DELETE CASCADE;
ALTER TABLE reports DROP COLUMN revision;
