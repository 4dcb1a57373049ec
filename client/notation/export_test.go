package notation

// Referrers is referrers, for the tests of the fallback to the referrers tag.
var Referrers = referrers
