#!/bin/sh
# Prints which of Signet's parts each part imports directly, in its non-test code:
# one line per part, "part -> the parts it imports". A part is a top-level
# directory, except where ARCHITECTURE.md §1 draws a line inside one (the
# management API's wire types, the audit log on storage, the registry's
# storage, trustd's domain and TUF packages, each internal package).
# The rules these lines must follow are checked by internal/archtest.
set -eu
module=$(go list -m)
go list -f '{{.ImportPath}}{{range .Imports}} {{.}}{{end}}' ./... |
awk -v module="$module/" '
function part(p,   n, c) {
	if (index(p, module) != 1) return ""
	p = substr(p, length(module) + 1)
	n = split(p, c, "/")
	if (c[1] == "internal" || c[1] == "cmd") return c[1] "/" c[2]
	if (p ~ /^(trustd\/(api|tuf|directory)|audit\/auditlog|registry\/storage|registry\/notify|client\/(oci|trust|signed|notation))(\/|$)/)
		return c[1] "/" c[2]
	return c[1]
}
{
	from = part($1)
	if (from == "" || from == "e2e") next
	seen[from] = 1
	for (i = 2; i <= NF; i++) {
		to = part($i)
		if (to != "" && to != from) edge[from, to] = 1
	}
}
END {
	for (f in seen) {
		line = ""
		for (t in seen) if ((f, t) in edge) line = line " " t
		print f " ->" line
	}
}' | while read -r from arrow rest; do
	printf '%s -> %s\n' "$from" "$(printf '%s\n' $rest | sort | tr '\n' ' ' | sed 's/ $//')"
done | sort
