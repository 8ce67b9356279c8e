// Package s3 is the S3 provider (s3.aws.strata.dev): Bucket managed
// resources (region, versioning, tags, policy, lifecycle expiration) kept in
// sync through aws-sdk-go-v2, against AWS or any S3-compatible service
// (endpoint and path-style addressing come from the ProviderConfig). It
// knows nothing about compositions.
package s3
