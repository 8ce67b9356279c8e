package s3_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-dev/strata/internal/conditions"
	"github.com/strata-dev/strata/internal/managed"
	managedv1 "github.com/strata-dev/strata/internal/managed/apis/v1alpha1"
	"github.com/strata-dev/strata/internal/testenv"
	mt "github.com/strata-dev/strata/internal/testenv/managedtest"
	"github.com/strata-dev/strata/providers/s3"
	s3v1 "github.com/strata-dev/strata/providers/s3/apis/s3/v1alpha1"
)

var env *testenv.Env

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, &env, testenv.Start)) }

const wait = 30 * time.Second

func s3Client(endpoint, ak, sk, region string) *awss3.Client {
	return awss3.New(awss3.Options{
		Region: region, BaseEndpoint: aws.String(endpoint), UsePathStyle: true,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: ak, SecretAccessKey: sk}, nil
		}),
	})
}

func setup(t *testing.T) (*mt.S3, *s3v1.ProviderConfig) {
	t.Helper()
	gw := mt.StartVersityGW(t)
	mt.StartManager(t, env.Config, func(m ctrl.Manager) error { return s3.Setup(m, managed.Options{}) })
	ctx := context.Background()
	sfx := mt.Suffix()
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "s3-" + sfx},
		StringData: map[string]string{"access_key_id": gw.AccessKey, "secret_access_key": gw.SecretKey}}
	pc := &s3v1.ProviderConfig{ObjectMeta: metav1.ObjectMeta{Name: "s3-" + sfx}, Spec: s3v1.ProviderConfigSpec{
		CredentialsSecretRef: managedv1.SecretReference{Namespace: "default", Name: sec.Name},
		Endpoint:             gw.Endpoint, UsePathStyle: true}}
	for _, o := range []client.Object{sec, pc} {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _ = env.Client.Delete(ctx, pc); _ = env.Client.Delete(ctx, sec) })
	return gw, pc
}

// TestBucket creates a bucket with versioning and tags, puts and gets an
// object with the published credentials, corrects tag drift, and deletes it.
func TestBucket(t *testing.T) {
	gw, pc := setup(t)
	ctx := context.Background()
	name := "strata-" + mt.Suffix()
	b := &s3v1.Bucket{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{managed.AnnotationPollInterval: "1s"}},
		Spec: s3v1.BucketSpec{ResourceSpec: managedv1.ResourceSpec{
			ProviderConfigReference:          &managedv1.Reference{Name: pc.Name},
			WriteConnectionSecretToReference: &managedv1.SecretReference{Namespace: "default", Name: name + "-conn"},
		}, ForProvider: s3v1.BucketParameters{Versioning: aws.Bool(true), Tags: map[string]string{"team": "data", "env": "test"}}}}
	if err := env.Client.Create(ctx, b); err != nil {
		t.Fatal(err)
	}
	mt.WaitCondition(t, env.Client, b, conditions.Ready, metav1.ConditionTrue, conditions.ReasonAvailable, wait)
	mt.WaitCondition(t, env.Client, b, conditions.Synced, metav1.ConditionTrue, conditions.ReasonReconcileSuccess, wait)
	if b.Status.AtProvider.VersioningStatus != "Enabled" || b.Status.AtProvider.Tags["team"] != "data" {
		t.Errorf("atProvider = %+v", b.Status.AtProvider)
	}

	sec := &corev1.Secret{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: name + "-conn"}, sec); err != nil {
		t.Fatal(err)
	}
	c := s3Client(string(sec.Data["endpoint"]), string(sec.Data["access_key_id"]), string(sec.Data["secret_access_key"]), string(sec.Data["region"]))
	bucket := string(sec.Data["bucket"])
	if _, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: &bucket, Key: aws.String("hello.txt"), Body: bytes.NewReader([]byte("hi"))}); err != nil {
		t.Fatalf("cannot put an object with the published credentials: %v", err)
	}
	out, err := c.GetObject(ctx, &awss3.GetObjectInput{Bucket: &bucket, Key: aws.String("hello.txt")})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(out.Body)
	_ = out.Body.Close()
	if string(body) != "hi" {
		t.Errorf("got %q", body)
	}

	// Tags changed behind Strata's back are put back at the next poll.
	admin := s3Client(gw.Endpoint, gw.AccessKey, gw.SecretKey, "us-east-1")
	if _, err := admin.PutBucketTagging(ctx, &awss3.PutBucketTaggingInput{Bucket: &bucket,
		Tagging: &types.Tagging{TagSet: []types.Tag{{Key: aws.String("team"), Value: aws.String("other")}}}}); err != nil {
		t.Fatal(err)
	}
	mt.Eventually(t, wait, "tags restored", func() error {
		tags, err := admin.GetBucketTagging(ctx, &awss3.GetBucketTaggingInput{Bucket: &bucket})
		if err != nil {
			return err
		}
		if len(tags.TagSet) != 2 {
			return errors.New("tags not restored")
		}
		return nil
	})
	mt.HasEvent(t, env.Client, name, managed.EventUpdated)

	// A bucket with objects cannot be deleted: the resource says why.
	if err := env.Client.Delete(ctx, b); err != nil {
		t.Fatal(err)
	}
	mt.WaitCondition(t, env.Client, b, conditions.Synced, metav1.ConditionFalse, conditions.ReasonReconcileError, wait)
	if msg := conditions.Get(b, conditions.Synced).Message; !strings.Contains(msg, "cannot delete bucket") {
		t.Errorf("message = %q", msg)
	}
	// Empty it (every version) and the delete completes.
	vs, err := admin.ListObjectVersions(ctx, &awss3.ListObjectVersionsInput{Bucket: &bucket})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs.Versions {
		if _, err := admin.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: &bucket, Key: v.Key, VersionId: v.VersionId}); err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range vs.DeleteMarkers {
		_, _ = admin.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: &bucket, Key: v.Key, VersionId: v.VersionId})
	}
	mt.WaitGone(t, env.Client, b, time.Minute)
	if _, err := admin.HeadBucket(ctx, &awss3.HeadBucketInput{Bucket: &bucket}); err == nil {
		t.Error("bucket still exists after delete")
	}
}

// TestBucketNameValidation: a name S3 cannot hold is rejected, never sent.
func TestBucketNameValidation(t *testing.T) {
	_, pc := setup(t)
	ctx := context.Background()
	b := &s3v1.Bucket{ObjectMeta: metav1.ObjectMeta{Name: "bad-" + mt.Suffix(), Annotations: map[string]string{managed.AnnotationExternalName: `a"; DROP TABLE x; --`}},
		Spec: s3v1.BucketSpec{ResourceSpec: managedv1.ResourceSpec{ProviderConfigReference: &managedv1.Reference{Name: pc.Name}}}}
	if err := env.Client.Create(ctx, b); err != nil {
		t.Fatal(err)
	}
	mt.WaitCondition(t, env.Client, b, conditions.Stalled, metav1.ConditionTrue, "", wait)
	if msg := conditions.Get(b, conditions.Ready).Message; !strings.Contains(msg, "is invalid") {
		t.Errorf("message = %q", msg)
	}
	if err := env.Client.Delete(ctx, b); err != nil {
		t.Fatal(err)
	}
	mt.WaitGone(t, env.Client, b, wait)
}

// TestBucketPolicyAndLifecycle sets a policy; lifecycle rules, which
// versitygw does not implement, stall the resource with a message saying so.
func TestBucketPolicyAndLifecycle(t *testing.T) {
	gw, pc := setup(t)
	ctx := context.Background()
	name := "strata-" + mt.Suffix()
	policy := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":["*"]},"Action":["s3:GetObject"],"Resource":["arn:aws:s3:::` + name + `/*"]}]}`
	b := &s3v1.Bucket{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: s3v1.BucketSpec{ResourceSpec: managedv1.ResourceSpec{ProviderConfigReference: &managedv1.Reference{Name: pc.Name}},
			ForProvider: s3v1.BucketParameters{Policy: policy}}}
	if err := env.Client.Create(ctx, b); err != nil {
		t.Fatal(err)
	}
	mt.WaitCondition(t, env.Client, b, conditions.Ready, metav1.ConditionTrue, conditions.ReasonAvailable, wait)
	mt.WaitCondition(t, env.Client, b, conditions.Synced, metav1.ConditionTrue, conditions.ReasonReconcileSuccess, wait)
	admin := s3Client(gw.Endpoint, gw.AccessKey, gw.SecretKey, "us-east-1")
	if _, err := admin.GetBucketPolicy(ctx, &awss3.GetBucketPolicyInput{Bucket: &name}); err != nil {
		t.Errorf("policy not set: %v", err)
	}
	if !b.Status.AtProvider.HasPolicy {
		t.Error("atProvider.hasPolicy is false")
	}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(b), b); err != nil {
		t.Fatal(err)
	}
	b.Spec.ForProvider.LifecycleRules = []s3v1.LifecycleRule{{ID: "tmp", Prefix: "tmp/", ExpirationDays: 7}}
	if err := env.Client.Update(ctx, b); err != nil {
		t.Fatal(err)
	}
	mt.WaitCondition(t, env.Client, b, conditions.Stalled, metav1.ConditionTrue, "", wait)
	if msg := conditions.Get(b, conditions.Ready).Message; !strings.Contains(msg, "does not support lifecycle rules") {
		t.Errorf("message = %q", msg)
	}
	if err := env.Client.Delete(ctx, b); err != nil {
		t.Fatal(err)
	}
	mt.WaitGone(t, env.Client, b, wait)
	if _, err := admin.HeadBucket(ctx, &awss3.HeadBucketInput{Bucket: &name}); err == nil {
		t.Error("bucket still exists after delete")
	}
}

// TestProviderConfigWrongCredentials: a ProviderConfig whose secret key the
// server refuses is Ready=False (ConnectionFailed) naming the endpoint, with
// no key in its message, and Ready once the Secret is fixed.
func TestProviderConfigWrongCredentials(t *testing.T) {
	gw, good := setup(t)
	ctx := context.Background()
	mt.WaitCondition(t, env.Client, good, conditions.Ready, metav1.ConditionTrue, conditions.ReasonAvailable, wait)

	wrong := "wrong-secret-" + mt.Suffix()
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "s3-wrong-" + mt.Suffix()},
		StringData: map[string]string{"access_key_id": gw.AccessKey, "secret_access_key": wrong}}
	pc := &s3v1.ProviderConfig{ObjectMeta: metav1.ObjectMeta{Name: sec.Name}, Spec: s3v1.ProviderConfigSpec{
		CredentialsSecretRef: managedv1.SecretReference{Namespace: "default", Name: sec.Name},
		Endpoint:             gw.Endpoint, UsePathStyle: true}}
	for _, o := range []client.Object{sec, pc} {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _ = env.Client.Delete(ctx, pc); _ = env.Client.Delete(ctx, sec) })
	mt.WaitCondition(t, env.Client, pc, conditions.Ready, metav1.ConditionFalse, managed.ReasonConnectionFailed, wait)
	msg := conditions.Get(pc, conditions.Ready).Message
	if !strings.Contains(msg, gw.Endpoint) || strings.Contains(msg, wrong) || strings.Contains(msg, gw.SecretKey) {
		t.Errorf("Ready message = %q, want it to name %s and no key", msg, gw.Endpoint)
	}

	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(sec), sec); err != nil {
		t.Fatal(err)
	}
	sec.Data["secret_access_key"] = []byte(gw.SecretKey)
	if err := env.Client.Update(ctx, sec); err != nil {
		t.Fatal(err)
	}
	mt.WaitCondition(t, env.Client, pc, conditions.Ready, metav1.ConditionTrue, conditions.ReasonAvailable, wait)
}

// TestAnotherTeamsBucketIsNotTakenOver: a Bucket named like a bucket
// someone else made on the same server (the name a claimant chose, say)
// reports the conflict, leaves the bucket's tags as they are and, deleted,
// leaves the bucket. Before, it rewrote the tags and deleted the (empty)
// bucket with itself.
func TestAnotherTeamsBucketIsNotTakenOver(t *testing.T) {
	gw, pc := setup(t)
	ctx := context.Background()
	name := "theirs-" + mt.Suffix()
	admin := s3Client(gw.Endpoint, gw.AccessKey, gw.SecretKey, "us-east-1")
	if _, err := admin.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: &name}); err != nil {
		t.Fatal(err)
	}
	theirTags := &types.Tagging{TagSet: []types.Tag{{Key: aws.String("team"), Value: aws.String("theirs")}}}
	if _, err := admin.PutBucketTagging(ctx, &awss3.PutBucketTaggingInput{Bucket: &name, Tagging: theirTags}); err != nil {
		t.Fatal(err)
	}
	b := &s3v1.Bucket{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{managed.AnnotationPollInterval: "1s"}},
		Spec: s3v1.BucketSpec{ResourceSpec: managedv1.ResourceSpec{ProviderConfigReference: &managedv1.Reference{Name: pc.Name}},
			ForProvider: s3v1.BucketParameters{Tags: map[string]string{"team": "mine"}}}}
	if err := env.Client.Create(ctx, b); err != nil {
		t.Fatal(err)
	}
	mt.WaitCondition(t, env.Client, b, conditions.Synced, metav1.ConditionFalse, managed.ReasonResourceConflict, wait)
	if msg := conditions.Get(b, conditions.Synced).Message; !strings.Contains(msg, fmt.Sprintf("external resource %q already exists", name)) {
		t.Errorf("Synced message = %q", msg)
	}
	tagsOf := func() string {
		out, err := admin.GetBucketTagging(ctx, &awss3.GetBucketTaggingInput{Bucket: &name})
		if err != nil {
			t.Fatalf("the other team's bucket: %v", err)
		}
		var s []string
		for _, tg := range out.TagSet {
			s = append(s, aws.ToString(tg.Key)+"="+aws.ToString(tg.Value))
		}
		return strings.Join(s, ",")
	}
	time.Sleep(3 * time.Second) // three polls
	if got := tagsOf(); got != "team=theirs" {
		t.Errorf("the other team's tags are %s", got)
	}
	if err := env.Client.Delete(ctx, b); err != nil {
		t.Fatal(err)
	}
	mt.WaitGone(t, env.Client, b, wait)
	if _, err := admin.HeadBucket(ctx, &awss3.HeadBucketInput{Bucket: &name}); err != nil {
		t.Fatalf("deleting the Bucket deleted the other team's bucket: %v", err)
	}
	if got := tagsOf(); got != "team=theirs" {
		t.Errorf("the other team's tags are %s after the delete", got)
	}
}
