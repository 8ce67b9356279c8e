package s3

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kitreconcile "github.com/strata-dev/strata/internal/kit/reconcile"
	"github.com/strata-dev/strata/internal/managed"
	s3v1 "github.com/strata-dev/strata/providers/s3/apis/s3/v1alpha1"
)

// Setup registers the Bucket and ProviderConfig controllers.
func Setup(mgr ctrl.Manager, o managed.Options) error {
	mc, err := managed.Client(mgr, o)
	if err != nil {
		return err
	}
	c := &connector{client: mc}
	if err := managed.Setup(mgr, o, managed.Kind{New: func() managed.Managed { return &s3v1.Bucket{} }, Connector: c,
		ProviderConfig: func() managed.ProviderConfig { return &s3v1.ProviderConfig{} }}); err != nil {
		return err
	}
	return managed.SetupProviderConfig(mgr, managed.ProviderConfigKind{
		New: func() managed.ProviderConfig { return &s3v1.ProviderConfig{} },
		Users: []managed.User{{New: func() managed.Managed { return &s3v1.Bucket{} },
			NewList: func() client.ObjectList { return &s3v1.BucketList{} }}},
		Check: c.check,
	})
}

// check signs one ListBuckets request with the ProviderConfig's credentials,
// so wrong keys make it Ready=False before any Bucket uses them.
func (c *connector) check(ctx context.Context, pc managed.ProviderConfig) error {
	b, err := c.connect(ctx, pc.GetName(), "")
	if err != nil {
		return err
	}
	if _, err := b.s3.ListBuckets(ctx, &awss3.ListBucketsInput{MaxBuckets: aws.Int32(1)}); err != nil {
		return fmt.Errorf("%s refused the credentials of ProviderConfig %q: %w", b.where, pc.GetName(), err)
	}
	return nil
}

type connector struct{ client client.Client }

func (c *connector) Connect(ctx context.Context, mg managed.Managed) (managed.External, error) {
	return c.connect(ctx, managed.ProviderConfigName(mg), mg.(*s3v1.Bucket).Spec.ForProvider.Region)
}

// connect builds a client from ProviderConfig name for region (empty: the
// ProviderConfig's, else us-east-1).
func (c *connector) connect(ctx context.Context, name, region string) (*bucket, error) {
	pc := &s3v1.ProviderConfig{}
	if err := c.client.Get(ctx, client.ObjectKey{Name: name}, pc); err != nil {
		return nil, fmt.Errorf("cannot get s3 ProviderConfig %q: %w", name, err)
	}
	ref := pc.Spec.CredentialsSecretRef
	sec := &corev1.Secret{}
	if err := c.client.Get(ctx, client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}, sec); err != nil {
		return nil, fmt.Errorf("cannot read the credentials Secret %s/%s of ProviderConfig %q: %w", ref.Namespace, ref.Name, name, err)
	}
	creds := aws.Credentials{
		AccessKeyID:     string(sec.Data["access_key_id"]),
		SecretAccessKey: string(sec.Data["secret_access_key"]),
		SessionToken:    string(sec.Data["session_token"]),
	}
	if creds.AccessKeyID == "" || creds.SecretAccessKey == "" {
		return nil, fmt.Errorf("credentials Secret %s/%s of ProviderConfig %q needs access_key_id and secret_access_key", ref.Namespace, ref.Name, name)
	}
	if region == "" {
		region = pc.Spec.Region
	}
	if region == "" {
		region = "us-east-1"
	}
	opts := awss3.Options{
		Region:           region,
		Credentials:      aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return creds, nil }),
		UsePathStyle:     pc.Spec.UsePathStyle,
		HTTPClient:       &http.Client{Timeout: 10 * time.Second},
		RetryMaxAttempts: 2,
	}
	where := "s3 in " + region
	if pc.Spec.Endpoint != "" {
		opts.BaseEndpoint = aws.String(pc.Spec.Endpoint)
		where = "s3 at " + pc.Spec.Endpoint
	}
	return &bucket{s3: awss3.New(opts), where: where, region: region, endpoint: pc.Spec.Endpoint, creds: creds}, nil
}

type bucket struct {
	s3       *awss3.Client
	where    string // "s3 at http://..." for messages
	region   string
	endpoint string
	creds    aws.Credentials
}

// bucketName is S3's naming rule for new buckets.
var bucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func (e *bucket) fail(what, name string, err error) error {
	return fmt.Errorf("cannot %s bucket %q on %s: %w", what, name, e.where, err)
}

func (e *bucket) Observe(ctx context.Context, mg managed.Managed) (managed.Observation, error) {
	cr := mg.(*s3v1.Bucket)
	name := managed.ExternalName(cr)
	if !bucketName.MatchString(name) || strings.Contains(name, "..") {
		return managed.Observation{}, kitreconcile.Terminal(managed.ReasonInvalidSpec, fmt.Errorf("bucket name %q is invalid: use 3-63 lower-case letters, digits, dots and hyphens", name))
	}
	if _, err := e.s3.HeadBucket(ctx, &awss3.HeadBucketInput{Bucket: &name}); err != nil {
		var nf *types.NotFound
		if errors.As(err, &nf) || apiCode(err) == "NotFound" || apiCode(err) == "NoSuchBucket" {
			return managed.Observation{}, nil
		}
		return managed.Observation{}, e.fail("read", name, err)
	}
	obs := s3v1.BucketObservation{Region: e.region}
	v, err := e.s3.GetBucketVersioning(ctx, &awss3.GetBucketVersioningInput{Bucket: &name})
	if err != nil {
		return managed.Observation{}, e.fail("read versioning of", name, err)
	}
	obs.VersioningStatus = string(v.Status)
	tags, err := e.s3.GetBucketTagging(ctx, &awss3.GetBucketTaggingInput{Bucket: &name})
	switch {
	case err == nil:
		obs.Tags = map[string]string{}
		for _, t := range tags.TagSet {
			obs.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
		}
	case apiCode(err) == "NoSuchTagSet" || apiCode(err) == "NoSuchTagSetError":
	default:
		return managed.Observation{}, e.fail("read tags of", name, err)
	}
	policy := ""
	p, err := e.s3.GetBucketPolicy(ctx, &awss3.GetBucketPolicyInput{Bucket: &name})
	switch {
	case err == nil:
		policy = aws.ToString(p.Policy)
	case apiCode(err) == "NoSuchBucketPolicy":
	default:
		return managed.Observation{}, e.fail("read the policy of", name, err)
	}
	obs.HasPolicy = policy != ""
	// Lifecycle is read only when the spec manages it: some S3-compatible
	// services do not implement it.
	var lc *awss3.GetBucketLifecycleConfigurationOutput
	err = nil
	if cr.Spec.ForProvider.LifecycleRules != nil {
		lc, err = e.s3.GetBucketLifecycleConfiguration(ctx, &awss3.GetBucketLifecycleConfigurationInput{Bucket: &name})
	}
	switch {
	case lc == nil && err == nil:
	case apiCode(err) == "NotImplemented":
		// Reported as drift; Update says the service cannot do it.
	case err == nil:
		for _, r := range lc.Rules {
			rule := s3v1.LifecycleRule{ID: aws.ToString(r.ID), Enabled: aws.Bool(r.Status == types.ExpirationStatusEnabled)}
			if r.Filter != nil {
				rule.Prefix = aws.ToString(r.Filter.Prefix)
			}
			if r.Expiration != nil {
				rule.ExpirationDays = aws.ToInt32(r.Expiration.Days)
			}
			obs.LifecycleRules = append(obs.LifecycleRules, rule)
		}
	case apiCode(err) == "NoSuchLifecycleConfiguration":
	default:
		return managed.Observation{}, e.fail("read the lifecycle of", name, err)
	}
	cr.Status.AtProvider = obs

	fp := &cr.Spec.ForProvider
	var drift []string
	if fp.Versioning != nil {
		want := types.BucketVersioningStatusSuspended
		if *fp.Versioning {
			want = types.BucketVersioningStatusEnabled
		}
		if string(want) != obs.VersioningStatus && (*fp.Versioning || obs.VersioningStatus != "") {
			drift = append(drift, fmt.Sprintf("versioning is %q, want %q", obs.VersioningStatus, want))
		}
	}
	if fp.Tags != nil && !maps.Equal(fp.Tags, obs.Tags) && !(len(fp.Tags) == 0 && len(obs.Tags) == 0) {
		drift = append(drift, "tags differ")
	}
	if !samePolicy(fp.Policy, policy) {
		drift = append(drift, "policy differs")
	}
	if fp.LifecycleRules != nil && !sameRules(fp.LifecycleRules, obs.LifecycleRules) {
		drift = append(drift, "lifecycle rules differ")
	}
	return managed.Observation{
		Exists: true, UpToDate: len(drift) == 0, Drift: strings.Join(drift, "; "),
		ConnectionDetails: e.details(name),
	}, nil
}

func (e *bucket) details(name string) managed.ConnectionDetails {
	d := managed.ConnectionDetails{
		"bucket":            []byte(name),
		"region":            []byte(e.region),
		"access_key_id":     []byte(e.creds.AccessKeyID),
		"secret_access_key": []byte(e.creds.SecretAccessKey),
	}
	if e.endpoint != "" {
		d[managed.ConnectionEndpoint] = []byte(e.endpoint)
	}
	return d
}

// samePolicy compares two policy documents as JSON values.
func samePolicy(want, got string) bool {
	if want == "" || got == "" {
		return want == got
	}
	var a, b any
	if json.Unmarshal([]byte(want), &a) != nil || json.Unmarshal([]byte(got), &b) != nil {
		return want == got
	}
	return reflect.DeepEqual(a, b)
}

func sameRules(want, got []s3v1.LifecycleRule) bool {
	norm := func(in []s3v1.LifecycleRule) []string {
		var out []string
		for _, r := range in {
			enabled := r.Enabled == nil || *r.Enabled
			out = append(out, fmt.Sprintf("%s|%s|%d|%t", r.ID, r.Prefix, r.ExpirationDays, enabled))
		}
		sort.Strings(out)
		return out
	}
	return slices.Equal(norm(want), norm(got))
}

func (e *bucket) Create(ctx context.Context, mg managed.Managed) (managed.Creation, error) {
	cr := mg.(*s3v1.Bucket)
	name := managed.ExternalName(cr)
	in := &awss3.CreateBucketInput{Bucket: &name}
	if e.region != "us-east-1" {
		in.CreateBucketConfiguration = &types.CreateBucketConfiguration{LocationConstraint: types.BucketLocationConstraint(e.region)}
	}
	if _, err := e.s3.CreateBucket(ctx, in); err != nil {
		// The runtime calls Create only for a bucket it observed missing
		// (a create of its own that was interrupted is found by Observe):
		// one that exists now, even under the same credentials, was made
		// by someone else in between.
		if c := apiCode(err); c == "BucketAlreadyOwnedByYou" || c == "BucketAlreadyExists" {
			return managed.Creation{}, managed.AlreadyExists(e.fail("create", name, err))
		}
		return managed.Creation{}, e.fail("create", name, err)
	}
	return managed.Creation{ConnectionDetails: e.details(name)}, nil
}

func (e *bucket) Update(ctx context.Context, mg managed.Managed) (managed.Update, error) {
	cr := mg.(*s3v1.Bucket)
	name, fp, obs := managed.ExternalName(cr), cr.Spec.ForProvider, cr.Status.AtProvider
	if fp.Versioning != nil {
		st := types.BucketVersioningStatusSuspended
		if *fp.Versioning {
			st = types.BucketVersioningStatusEnabled
		}
		if string(st) != obs.VersioningStatus && (*fp.Versioning || obs.VersioningStatus != "") {
			if _, err := e.s3.PutBucketVersioning(ctx, &awss3.PutBucketVersioningInput{Bucket: &name,
				VersioningConfiguration: &types.VersioningConfiguration{Status: st}}); err != nil {
				return managed.Update{}, e.fail("set versioning of", name, err)
			}
		}
	}
	if fp.Tags != nil && !maps.Equal(fp.Tags, obs.Tags) {
		if len(fp.Tags) == 0 {
			if _, err := e.s3.DeleteBucketTagging(ctx, &awss3.DeleteBucketTaggingInput{Bucket: &name}); err != nil {
				return managed.Update{}, e.fail("remove tags of", name, err)
			}
		} else {
			var set []types.Tag
			for _, k := range slices.Sorted(maps.Keys(fp.Tags)) {
				set = append(set, types.Tag{Key: aws.String(k), Value: aws.String(fp.Tags[k])})
			}
			if _, err := e.s3.PutBucketTagging(ctx, &awss3.PutBucketTaggingInput{Bucket: &name, Tagging: &types.Tagging{TagSet: set}}); err != nil {
				return managed.Update{}, e.fail("tag", name, err)
			}
		}
	}
	if fp.Policy == "" && obs.HasPolicy {
		if _, err := e.s3.DeleteBucketPolicy(ctx, &awss3.DeleteBucketPolicyInput{Bucket: &name}); err != nil {
			return managed.Update{}, e.fail("remove the policy of", name, err)
		}
	} else if fp.Policy != "" {
		if _, err := e.s3.PutBucketPolicy(ctx, &awss3.PutBucketPolicyInput{Bucket: &name, Policy: aws.String(fp.Policy)}); err != nil {
			if apiCode(err) == "MalformedPolicy" {
				return managed.Update{}, kitreconcile.Terminal(managed.ReasonRejected, e.fail("set the policy of", name, err))
			}
			return managed.Update{}, e.fail("set the policy of", name, err)
		}
	}
	if fp.LifecycleRules != nil && !sameRules(fp.LifecycleRules, obs.LifecycleRules) {
		if len(fp.LifecycleRules) == 0 {
			if _, err := e.s3.DeleteBucketLifecycle(ctx, &awss3.DeleteBucketLifecycleInput{Bucket: &name}); err != nil {
				return managed.Update{}, e.fail("remove the lifecycle of", name, err)
			}
		} else {
			var rules []types.LifecycleRule
			for _, r := range fp.LifecycleRules {
				st := types.ExpirationStatusEnabled
				if r.Enabled != nil && !*r.Enabled {
					st = types.ExpirationStatusDisabled
				}
				rules = append(rules, types.LifecycleRule{ID: aws.String(r.ID), Status: st,
					Filter:     &types.LifecycleRuleFilter{Prefix: aws.String(r.Prefix)},
					Expiration: &types.LifecycleExpiration{Days: aws.Int32(r.ExpirationDays)}})
			}
			if _, err := e.s3.PutBucketLifecycleConfiguration(ctx, &awss3.PutBucketLifecycleConfigurationInput{Bucket: &name,
				LifecycleConfiguration: &types.BucketLifecycleConfiguration{Rules: rules}}); err != nil {
				if apiCode(err) == "NotImplemented" {
					return managed.Update{}, kitreconcile.Terminal(managed.ReasonRejected, fmt.Errorf("%s does not support lifecycle rules (NotImplemented); remove spec.forProvider.lifecycleRules", e.where))
				}
				return managed.Update{}, e.fail("set the lifecycle of", name, err)
			}
		}
	}
	return managed.Update{ConnectionDetails: e.details(name)}, nil
}

func (e *bucket) Delete(ctx context.Context, mg managed.Managed) error {
	name := managed.ExternalName(mg)
	if _, err := e.s3.DeleteBucket(ctx, &awss3.DeleteBucketInput{Bucket: &name}); err != nil {
		if c := apiCode(err); c == "NoSuchBucket" || c == "NotFound" {
			return nil
		}
		return e.fail("delete", name, err)
	}
	return nil
}
