-- Report density (the hotspots tileset) without reading the reports: each
-- report carries the Web Mercator cell of its point at zoom 24 as a Morton
-- code (report_cell: the bits of x and y interleaved), so that the reports
-- of any tile down to zoom 24 are one contiguous range of codes, and the
-- hotspot bins of a tile are those codes shifted right. reports_cell holds
-- the code with what a hotspot tile counts: a tile is an index-only scan
-- of one range, where the location index would fetch each report's row
-- from wherever it lies in the table.
--
-- Outside a transaction, so that the index is built CONCURRENTLY while
-- intake goes on; each step can be run again.

-- +goose NO TRANSACTION
-- +goose Up

-- report_cell_spread spaces the 24 low bits of v one bit apart (bit i to
-- bit 2i); report_cell_compact undoes it.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION report_cell_spread(v bigint) RETURNS bigint LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
    v := v & 16777215;
    v := (v | (v << 16)) & x'0000FFFF0000FFFF'::bigint;
    v := (v | (v << 8)) & x'00FF00FF00FF00FF'::bigint;
    v := (v | (v << 4)) & x'0F0F0F0F0F0F0F0F'::bigint;
    v := (v | (v << 2)) & x'3333333333333333'::bigint;
    RETURN (v | (v << 1)) & x'5555555555555555'::bigint;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION report_cell_compact(v bigint) RETURNS bigint LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
    v := v & x'5555555555555555'::bigint;
    v := (v | (v >> 1)) & x'3333333333333333'::bigint;
    v := (v | (v >> 2)) & x'0F0F0F0F0F0F0F0F'::bigint;
    v := (v | (v >> 4)) & x'00FF00FF00FF00FF'::bigint;
    v := (v | (v >> 8)) & x'0000FFFF0000FFFF'::bigint;
    RETURN (v | (v >> 16)) & 16777215;
END
$$;
-- +goose StatementEnd

-- report_cell is the Morton code of the zoom-24 tile holding a report's
-- location (a line or area: a point on it), with the tiles' convention: a
-- point on an edge lies in the tile east and south of it.
-- postgres.HotspotCellRange works out the codes of a tile.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION report_cell(g geometry) RETURNS bigint LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT report_cell_spread(least(greatest(floor((ST_X(p) + 180) / 360 * 16777216), 0), 16777215)::bigint)
         | (report_cell_spread(least(greatest(floor((1 - asinh(tan(radians(ST_Y(p)))) / pi()) / 2 * 16777216), 0), 16777215)::bigint) << 1)
    FROM (SELECT CASE WHEN GeometryType(g) = 'POINT' THEN g ELSE ST_PointOnSurface(g) END AS p) s
$$;
-- +goose StatementEnd

ALTER TABLE reports ADD COLUMN IF NOT EXISTS cell bigint;

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION report_cell_set() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.cell := report_cell(NEW.location);
    RETURN NEW;
END
$$;
-- +goose StatementEnd
CREATE OR REPLACE TRIGGER report_cell_set BEFORE INSERT OR UPDATE OF location ON reports
    FOR EACH ROW EXECUTE FUNCTION report_cell_set();

-- The reports stored before, 10,000 at a time, each batch committed: a
-- workflow move waits on a batch, never on the whole table.
-- +goose StatementBegin
DO $$
DECLARE
    lo bigint;
BEGIN
    FOR lo IN SELECT generate_series(min(id), max(id), 10000) FROM reports LOOP
        UPDATE reports SET cell = report_cell(location) WHERE id >= lo AND id < lo + 10000 AND cell IS NULL;
        COMMIT;
    END LOOP;
END
$$;
-- +goose StatementEnd

-- A build that failed before leaves an invalid index behind, which IF NOT
-- EXISTS would keep.
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_index WHERE indexrelid = to_regclass('reports_cell') AND NOT indisvalid) THEN
        DROP INDEX reports_cell;
    END IF;
END
$$;
-- +goose StatementEnd
-- Its columns are those an unscoped hotspot tile counts and filters on:
-- status and due_at are indexed elsewhere already, the others seldom
-- change after intake, so the updates that were HOT (updated_at, the
-- assignment, notes) stay so.
CREATE INDEX CONCURRENTLY IF NOT EXISTS reports_cell ON reports (cell)
    INCLUDE (reported_at, category, status, urgent, due_at);

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS reports_cell;
DROP TRIGGER IF EXISTS report_cell_set ON reports;
DROP FUNCTION IF EXISTS report_cell_set();
ALTER TABLE reports DROP COLUMN IF EXISTS cell;
DROP FUNCTION IF EXISTS report_cell(geometry);
DROP FUNCTION IF EXISTS report_cell_compact(bigint);
DROP FUNCTION IF EXISTS report_cell_spread(bigint);
