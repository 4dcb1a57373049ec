package trust

import "testing"

func TestHasFingerprint(t *testing.T) {
	r := &RootInfo{SHA256: "227514f1e166ad83e3b6f895e76bffe79546d4c2e8d6a024d966ae66a7d61cd1"}
	for fp, want := range map[string]bool{
		"SHA256:227514f1e166ad83e3b6f895e76bffe79546d4c2e8d6a024d966ae66a7d61cd1": true,
		"sha256:227514F1E166AD83E3B6F895E76BFFE79546D4C2E8D6A024D966AE66A7D61CD1": true,
		" 227514f1e166ad83e3b6f895e76bffe79546d4c2e8d6a024d966ae66a7d61cd1\n":     true,
		"SHA256:227514f1e166ad83": false, // a prefix
		"SHA256:127514f1e166ad83e3b6f895e76bffe79546d4c2e8d6a024d966ae66a7d61cd1": false,
		"": false,
		"SHA256:227514f1e166ad83e3b6f895e76bffe79546d4c2e8d6a024d966ae66a7d61cd1ff": false,
	} {
		if got := r.HasFingerprint(fp); got != want {
			t.Errorf("HasFingerprint(%q) = %v, want %v", fp, got, want)
		}
	}
	if (&RootInfo{}).HasFingerprint("") {
		t.Error("a root without a sha256 has the empty fingerprint")
	}
}
