-- A scoped caller's reports newest first (a report list in arrival order):
-- its grid's rows of report_scope by report id, walked down from the
-- newest until the page is full. Without it the list walked every report
-- newest first, checking each one's scope codes: a grid with few reports
-- or none read every report (6.5 s with ten million), and a plan cached
-- for any caller sorted all the reports it found.
--
-- Built CONCURRENTLY, outside a transaction, so that intake goes on while
-- it is built (several minutes with ten million reports); the start can be
-- run again.

-- +goose NO TRANSACTION
-- +goose Up

-- A build that failed before leaves an invalid index behind, which IF NOT
-- EXISTS would keep; one still under way (its instance stopped while the
-- server goes on building) is left to finish, and this start fails saying
-- so.
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_stat_progress_create_index
               WHERE datid = (SELECT oid FROM pg_database WHERE datname = current_database())
                 AND index_relid = to_regclass('report_scope_report')) THEN
        RAISE EXCEPTION 'the index report_scope_report is still being built by another session; start again once it is done';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_index WHERE indexrelid = to_regclass('report_scope_report') AND NOT indisvalid) THEN
        PERFORM set_config('lock_timeout', '5s', true);
        DROP INDEX report_scope_report;
    END IF;
END
$$;
-- +goose StatementEnd
CREATE INDEX CONCURRENTLY IF NOT EXISTS report_scope_report ON report_scope (layer_id, code, report_id);

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS report_scope_report;
