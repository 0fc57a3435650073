-- Two of a big import's steps, each in its one transaction, spent their
-- time on one core of the database:
--
-- * The tiling check unions every parent's children. Done by the
--   coverage statement in a LATERAL subquery, PostgreSQL ran all the
--   unions in the leader, however many parallel workers it had. A
--   function of one parent, called from a scan of the parents, runs in
--   the workers: at 40 districts the check took 7.9 s on two cores
--   instead of 15 s. Workers see the import's own uncommitted grids: they
--   share its snapshot.
--
-- * Label points were indexed by GiST, whose insert of one point costs
--   about 86 us (a province's 1.2 million labels, written chunk by chunk:
--   over a minute and a half). SP-GiST inserts one in about 17 us and
--   answers the tiles' bounding-box test (&&) as GiST did.
--
-- Outside a transaction, so that the label index is built CONCURRENTLY
-- while tiles are served; each step can be run again.

-- +goose NO TRANSACTION
-- +goose Up

-- grid_children_cover sums up the children of parent in layer: the union
-- of their shapes u (an empty polygon when there are none), the sum of
-- their areas sum_a and the union's area ua, in m2 on the spheroid, and
-- spill, the area of u outside parent_geom (the parent's shape). The
-- children are those of the draft's grids when draft, else the current
-- published ones: read as postgres/coverage.go's children() reads them for
-- the rest of the coverage statement, which must agree with this. PARALLEL
-- SAFE and costly, so that a scan of many parents calls it in parallel
-- workers.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION grid_children_cover(layer text, parent text, parent_geom geometry, draft boolean,
    OUT u geometry, OUT sum_a double precision, OUT ua double precision, OUT spill double precision)
    LANGUAGE plpgsql STABLE PARALLEL SAFE COST 20000 AS $$
#variable_conflict use_variable
BEGIN
    IF draft THEN
        SELECT ST_Union(k.geom), sum(ST_Area(k.geom::geography)) INTO u, sum_a
        FROM draft_grids k WHERE k.layer_id = layer AND k.valid_to IS NULL AND k.parent_code = parent;
    ELSE
        SELECT ST_Union(k.geom), sum(ST_Area(k.geom::geography)) INTO u, sum_a
        FROM grid_versions k WHERE k.layer_id = layer AND k.valid_to IS NULL AND k.parent_code = parent;
    END IF;
    u := coalesce(u, 'SRID=4326;POLYGON EMPTY'::geometry);
    sum_a := coalesce(sum_a, 0);
    ua := ST_Area(u::geography);
    spill := CASE WHEN ST_Covers(parent_geom, u) THEN 0
                  ELSE ST_Area(ST_CollectionExtract(ST_Difference(u, parent_geom), 3)::geography) END;
END
$$;
-- +goose StatementEnd

-- A build that failed before leaves an invalid index behind, which IF NOT
-- EXISTS would keep. One still under way (its instance stopped while the
-- server goes on building) is invalid too: it is left to finish, and this
-- start fails saying so, rather than queueing every tile behind the drop.
-- A build by another role is hidden from the progress view: the drop then
-- gives up after a few seconds rather than wait for it.
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_stat_progress_create_index
               WHERE datid = (SELECT oid FROM pg_database WHERE datname = current_database())
                 AND index_relid = to_regclass('grid_labels_point')) THEN
        RAISE EXCEPTION 'the index grid_labels_point is still being built by another session; start again once it is done';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_index WHERE indexrelid = to_regclass('grid_labels_point') AND NOT indisvalid) THEN
        PERFORM set_config('lock_timeout', '5s', true);
        DROP INDEX grid_labels_point;
    END IF;
END
$$;
-- +goose StatementEnd
CREATE INDEX CONCURRENTLY IF NOT EXISTS grid_labels_point ON grid_labels USING spgist (geom);
DROP INDEX CONCURRENTLY IF EXISTS grid_labels_geom;

-- +goose Down
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_index WHERE indexrelid = to_regclass('grid_labels_geom') AND NOT indisvalid) THEN
        DROP INDEX grid_labels_geom;
    END IF;
END
$$;
-- +goose StatementEnd
CREATE INDEX CONCURRENTLY IF NOT EXISTS grid_labels_geom ON grid_labels USING gist (geom);
DROP INDEX CONCURRENTLY IF EXISTS grid_labels_point;
DROP FUNCTION IF EXISTS grid_children_cover(text, text, geometry, boolean);
