package postgres_test

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
)

// planCase is a statement whose plan a test checks: prepared from the
// statement named sql, executed with args, it must use every index in index and scan none of
// the tables in table whole.
type planCase struct {
	name, sql, args string
	index, table    []string
}

// checkPlans explains each case's statement of statements on conn under
// both forced custom and forced generic plans, as PostgreSQL may pick
// either for a prepared statement.
func checkPlans(t *testing.T, conn *pgxpool.Conn, statements map[string]string, cases []planCase) {
	t.Helper()
	checkPlansIn(t, conn, statements, cases, "force_custom_plan", "force_generic_plan")
}

// checkCustomPlans checks the plans of statements that are planned for
// their values each time (run as unnamed statements): custom plans only.
func checkCustomPlans(t *testing.T, conn *pgxpool.Conn, statements map[string]string, cases []planCase) {
	t.Helper()
	checkPlansIn(t, conn, statements, cases, "force_custom_plan")
}

func checkPlansIn(t *testing.T, conn *pgxpool.Conn, statements map[string]string, cases []planCase, modes ...string) {
	t.Helper()
	for _, tc := range cases {
		for _, mode := range modes {
			t.Run(tc.name+" "+mode, func(t *testing.T) {
				plan := planOf(t, conn, tc.name+" "+mode, statements[tc.sql], tc.args, mode)
				for _, idx := range tc.index {
					if !regexp.MustCompile(`(Index Scan( Backward)? using|Index Only Scan( Backward)? using|Bitmap Index Scan on) ` + idx + `\b`).MatchString(plan) {
						t.Errorf("the plan does not use %s:\n%s", idx, plan)
					}
				}
				for _, table := range tc.table {
					if regexp.MustCompile(`Seq Scan on ` + table + `\b`).MatchString(plan) {
						t.Errorf("the plan scans all of %s:\n%s", table, plan)
					}
				}
			})
		}
	}
}

// planOf prepares statement on conn, explains its execution with args
// under plan_cache_mode mode, and returns the plan.
func planOf(t *testing.T, conn *pgxpool.Conn, name, statement, args, mode string) string {
	t.Helper()
	ctx := context.Background()
	name = "plan_" + strings.ReplaceAll(name, " ", "_")
	if _, err := conn.Exec(ctx, "PREPARE "+name+" AS "+statement); err != nil {
		t.Fatal(err)
	}
	defer conn.Exec(ctx, "DEALLOCATE "+name)
	if _, err := conn.Exec(ctx, "SET plan_cache_mode = "+mode); err != nil {
		t.Fatal(err)
	}
	defer conn.Exec(ctx, "RESET plan_cache_mode")
	execute := "EXPLAIN EXECUTE " + name
	if args != "" {
		execute += "(" + args + ")"
	}
	rows, err := conn.Query(ctx, execute)
	if err != nil {
		t.Fatal(err)
	}
	var plan strings.Builder
	for rows.Next() {
		var line string
		rows.Scan(&line)
		plan.WriteString(line + "\n")
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return byParents(t, conn, plan.String())
}

// byParents names, in plan, each partition holding rows and each
// partition's index by the partitioned table or index it belongs to, so
// that a check for reports_due or for a scan of all of reports holds
// whichever months the plan reads. A partition holding nothing keeps its
// name: reading it whole costs nothing.
func byParents(t *testing.T, conn *pgxpool.Conn, plan string) string {
	t.Helper()
	rows, err := conn.Query(context.Background(), `SELECT c.relname::text, p.relname::text
		FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
		WHERE p.relkind IN ('p', 'I') AND (c.relkind <> 'r' OR pg_relation_size(c.oid) > 0)`)
	if err != nil {
		t.Fatal(err)
	}
	parents := map[string]string{}
	var names []string
	for rows.Next() {
		var child, parent string
		if err := rows.Scan(&child, &parent); err != nil {
			t.Fatal(err)
		}
		parents[child] = parent
		names = append(names, regexp.QuoteMeta(child))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(names) == 0 {
		return plan
	}
	return regexp.MustCompile(`\b(`+strings.Join(names, "|")+`)\b`).ReplaceAllStringFunc(plan, func(n string) string { return parents[n] })
}
