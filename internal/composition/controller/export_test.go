package controller

// WriteClaimStatus is writeClaimStatus, for the tests of package
// controller_test, which run against a real API server.
var WriteClaimStatus = writeClaimStatus
