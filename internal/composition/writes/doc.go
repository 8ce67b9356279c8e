// Package writes holds the integration test that counts the API write
// requests the composition engine makes per claim (create, update, delete),
// read from the test API server's apiserver_request_total. It has no code of
// its own and must not be imported: it runs its own API server so that no
// other test's requests are counted.
package writes
