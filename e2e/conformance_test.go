package e2e

import (
	"bufio"
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// TestConformance runs the OCI distribution-spec conformance suite against the
// registry with every optional API and data set enabled, and requires that no check
// fails, errors or is skipped.
func TestConformance(t *testing.T) {
	t.Parallel()
	runConformance(t, startRegistry(t).Addr)
}

// runConformance runs the suite against the registry at addr (host:port) and fails
// the test on any check that does not pass.
func runConformance(t *testing.T, addr string, env ...string) {
	t.Helper()
	results := t.TempDir()
	suite := newTool(t, "oci-conformance", append([]string{
		"OCI_REGISTRY=" + addr,
		"OCI_TLS=disabled",
		"OCI_REPO1=conformance/repo1",
		"OCI_REPO2=conformance/repo2",
		"OCI_API_BLOBS_UPLOAD_CANCEL=true",
		"OCI_API_MANIFESTS_TAG_PARAM=true",
		"OCI_DATA_SPARSE=true",
		"OCI_RESULTS_DIR=" + results,
	}, env...)...)
	// The suite exits non-zero on any failure; the verdict comes from its reports.
	stdout, runErr := suite.try()

	checks, err := readJUnit(filepath.Join(results, "junit.xml"))
	if err != nil {
		t.Fatalf("reading the suite's junit.xml: %v (run error: %v)\nstdout:\n%s", err, runErr, stdout)
	}
	summary, err := readResultsYAML(filepath.Join(results, "results.yaml"))
	if err != nil {
		t.Fatalf("reading the suite's results.yaml: %v (run error: %v)\nstdout:\n%s", err, runErr, stdout)
	}

	counts := map[string]int{}
	var bad []string
	for _, c := range checks {
		counts[c.Status]++
		switch c.Status {
		case "passed":
		case "disabled":
		default:
			msg := strings.TrimSpace(c.SystemOut)
			if msg == "" && c.Failure != nil {
				msg = c.Failure.Message
			}
			if msg == "" && c.Skipped != nil {
				msg = c.Skipped.Message
			}
			bad = append(bad, fmt.Sprintf("%s %s: %s", strings.ToUpper(c.Status), c.Name, oneLine(msg, 600)))
		}
	}
	if i := strings.Index(stdout, "OCI Conformance Result:"); i >= 0 {
		block, _, _ := strings.Cut(stdout[i:], "\n\n")
		t.Logf("suite summary:\n%s", block)
	}
	t.Logf("conformance: %d checks: %d passed, %d failed, %d errors, %d skipped, %d disabled",
		len(checks), counts["passed"], counts["failure"], counts["error"], counts["skipped"], counts["disabled"])
	var badGroups []string
	for _, k := range sortedKeys(summary) {
		if s := summary[k]; s != "Pass" && s != "Disabled" {
			badGroups = append(badGroups, fmt.Sprintf("%s: %s", k, s))
		}
	}
	if len(badGroups) > 0 {
		t.Errorf("results.yaml: %d APIs/data sets not passing:\n  %s", len(badGroups), strings.Join(badGroups, "\n  "))
	}
	if len(bad) > 0 {
		t.Errorf("%d conformance checks failed or were skipped (want zero of each):\n%s", len(bad), strings.Join(bad, "\n"))
	}
	if len(checks) == 0 {
		t.Errorf("the suite reported no checks; stdout:\n%s", stdout)
	}
	if runErr != nil && len(bad) == 0 && len(badGroups) == 0 {
		t.Errorf("the suite failed although no check did: %v", runErr)
	}
}

type junitCase struct {
	Name      string `xml:"name,attr"`
	Status    string `xml:"status,attr"`
	SystemOut string `xml:"system-out"`
	Failure   *struct {
		Message string `xml:"message,attr"`
	} `xml:"failure"`
	Skipped *struct {
		Message string `xml:"message,attr"`
	} `xml:"skipped"`
}

// readJUnit returns every leaf check of the suite's junit.xml.
func readJUnit(path string) ([]junitCase, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Suites []struct {
			Cases []junitCase `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	var out []junitCase
	for _, s := range doc.Suites {
		out = append(out, s.Cases...)
	}
	return out, nil
}

// readResultsYAML reads the "apis" and "data" maps of results.yaml (name: status),
// keyed "apis/<name>" and "data/<name>". The file is flat enough to read by line.
func readResultsYAML(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, " ") {
			section = strings.TrimSuffix(strings.TrimSpace(line), ":")
			continue
		}
		if section != "apis" && section != "data" {
			continue
		}
		if strings.HasPrefix(line, "    ") {
			continue
		}
		k, v, ok := strings.Cut(strings.TrimSpace(line), ": ")
		if !ok {
			continue
		}
		out[section+"/"+strings.Trim(k, `"'`)] = strings.Trim(v, `"'`)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no apis or data entries in %s", path)
	}
	return out, sc.Err()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		s = s[:n] + "..."
	}
	return s
}
