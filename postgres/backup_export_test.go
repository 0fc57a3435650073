package postgres

// ToolEnv and ArchiveTables expose toolEnv and archiveTables to the tests.
var (
	ToolEnv       = toolEnv
	ArchiveTables = archiveTables
)
