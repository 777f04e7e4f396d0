package creds

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
)

// AWSOptions configure the AWS source.
type AWSOptions struct {
	// Profile is the shared-config profile; default AWS_PROFILE, then
	// "default".
	Profile string
	// Paths are the S3 paths to mount, with their access.
	Paths []Path
}

// AWS takes credentials from the AWS SDK's default chain: the environment,
// the shared config and credentials files (including credential_process
// and SSO profiles), web identity, and the instance metadata service.
type AWS struct {
	cfgRegion string
	retrieve  func(context.Context) (Grant, error)
}

var _ Source = (*AWS)(nil)

// NewAWS loads the SDK's configuration for opts.Profile.
func NewAWS(ctx context.Context, opts AWSOptions) (*AWS, error) {
	if len(opts.Paths) == 0 {
		return nil, fmt.Errorf("the aws provider needs the paths to mount: --path s3://bucket/prefix (repeatable)")
	}
	var load []func(*config.LoadOptions) error
	if opts.Profile != "" {
		load = append(load, config.WithSharedConfigProfile(opts.Profile))
	}
	// Let the SDK's own cache renew well before the provider asks, so a
	// renewal never gets back credentials about to expire.
	load = append(load, config.WithCredentialsCacheOptions(func(o *aws.CredentialsCacheOptions) {
		o.ExpiryWindow = 10 * time.Minute
	}))
	cfg, err := config.LoadDefaultConfig(ctx, load...)
	if err != nil {
		return nil, fmt.Errorf("loading the AWS configuration: %w", err)
	}
	if cfg.Credentials == nil {
		return nil, fmt.Errorf("the AWS configuration has no credentials: set AWS_PROFILE or AWS_ACCESS_KEY_ID, or run on an instance with a role")
	}
	paths := append([]Path(nil), opts.Paths...)
	return &AWS{cfgRegion: cfg.Region, retrieve: func(ctx context.Context) (Grant, error) {
		c, err := cfg.Credentials.Retrieve(ctx)
		if err != nil {
			return Grant{}, fmt.Errorf("AWS credentials: %w", err)
		}
		return Grant{Credentials: c, Paths: paths}, nil
	}}, nil
}

// Name implements Source.
func (a *AWS) Name() string { return "AWS" }

// Region is the region of the loaded configuration, or "".
func (a *AWS) Region() string { return a.cfgRegion }

// Fetch implements Source.
func (a *AWS) Fetch(ctx context.Context) (Grant, error) { return a.retrieve(ctx) }
