package auditlog

// SetMaxExamined lowers how many records one Query of l reads, so tests need
// not write MaxExamined of them.
func SetMaxExamined(l *Log, n int) { l.maxExamined = n }
