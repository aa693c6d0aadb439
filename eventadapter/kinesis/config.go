package kinesis

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
)

// Start positions of a shard that has no checkpoint.
const (
	StartLatest      = "latest"       // only records put after the start
	StartTrimHorizon = "trim_horizon" // the oldest record still kept
	StartAtTimestamp = "at_timestamp" // records that arrived at or after StartTimestamp
)

// Defaults of Config.
const (
	DefaultPollInterval      = time.Second
	DefaultMaxRecords        = 1000
	DefaultShardSyncInterval = 10 * time.Second
)

// Config configures a Source.
type Config struct {
	// Stream is the Kinesis stream name (required).
	Stream string
	// Region is the AWS region; empty means the SDK's default (AWS_REGION,
	// shared config), or us-east-1 when Endpoint is set.
	Region string
	// Endpoint overrides the Kinesis endpoint, e.g. http://127.0.0.1:4567
	// for kinesis-local. With it set, static credentials "local"/"local"
	// are used unless AWS credentials are set in the environment.
	Endpoint string
	// StartPosition is where a shard without checkpoint starts:
	// "latest" (default), "trim_horizon" or "at_timestamp".
	StartPosition string
	// StartTimestamp is the start of "at_timestamp".
	StartTimestamp time.Time
	// PollInterval is the wait between GetRecords calls of a shard that is
	// caught up (default 1s; Kinesis allows 5 GetRecords/s per shard).
	PollInterval time.Duration
	// MaxRecords is the GetRecords limit (default 1000, at most 10000).
	MaxRecords int32
	// ShardSyncInterval is how often shards are listed again to pick up
	// the children of a reshard (default 10s).
	ShardSyncInterval time.Duration
}

// withDefaults validates c and fills in its defaults.
func (c Config) withDefaults() (Config, error) {
	if c.Stream == "" {
		return c, errors.New("kinesis: config: Stream is required")
	}
	c.StartPosition = strings.ToLower(strings.TrimSpace(c.StartPosition))
	switch c.StartPosition {
	case "":
		c.StartPosition = StartLatest
	case StartLatest, StartTrimHorizon:
	case StartAtTimestamp:
		if c.StartTimestamp.IsZero() {
			return c, errors.New("kinesis: config: StartPosition at_timestamp needs StartTimestamp")
		}
	default:
		return c, fmt.Errorf("kinesis: config: unknown StartPosition %q (want latest, trim_horizon or at_timestamp)", c.StartPosition)
	}
	if c.PollInterval <= 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.MaxRecords <= 0 {
		c.MaxRecords = DefaultMaxRecords
	}
	if c.MaxRecords > 10000 {
		return c, fmt.Errorf("kinesis: config: MaxRecords %d above the Kinesis limit of 10000", c.MaxRecords)
	}
	if c.ShardSyncInterval <= 0 {
		c.ShardSyncInterval = DefaultShardSyncInterval
	}
	return c, nil
}

// newClient builds the Kinesis client: the SDK's default chain, or with an
// endpoint override static local credentials unless the environment has
// AWS credentials.
func newClient(ctx context.Context, c Config) (*kinesis.Client, error) {
	var opts []func(*config.LoadOptions) error
	region := c.Region
	if region == "" && c.Endpoint != "" && os.Getenv("AWS_REGION") == "" && os.Getenv("AWS_DEFAULT_REGION") == "" {
		region = "us-east-1"
	}
	if region != "" {
		opts = append(opts, config.WithRegion(region))
	}
	if c.Endpoint != "" && !envCredentials() {
		opts = append(opts, config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("local", "local", "")))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("kinesis: load AWS config: %w", err)
	}
	if awsCfg.Region == "" {
		return nil, errors.New("kinesis: no AWS region: set Region or AWS_REGION")
	}
	return kinesis.NewFromConfig(awsCfg, func(o *kinesis.Options) {
		if c.Endpoint != "" {
			o.BaseEndpoint = aws.String(c.Endpoint)
		}
	}), nil
}

func envCredentials() bool {
	id := os.Getenv("AWS_ACCESS_KEY_ID") != "" || os.Getenv("AWS_ACCESS_KEY") != ""
	secret := os.Getenv("AWS_SECRET_ACCESS_KEY") != "" || os.Getenv("AWS_SECRET_KEY") != ""
	return id && secret
}
