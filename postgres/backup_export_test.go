package postgres

// ToolEnv, ArchiveTables, CopySchemaVersion and RestoreArchive expose
// their unexported namesakes to the tests.
var (
	ToolEnv           = toolEnv
	ArchiveTables     = archiveTables
	CopySchemaVersion = copySchemaVersion
	RestoreArchive    = restoreArchive
)
