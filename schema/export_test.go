package schema

// ScopedQuery is scopedQuery, for the tests of package schema_test.
var ScopedQuery = scopedQuery
