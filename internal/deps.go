//go:build tools

// Package internal pins modules that packages under construction will import,
// so go.mod stays stable while several packages are written at once.
package internal

import (
	_ "github.com/aws/aws-sdk-go-v2/aws"
	_ "github.com/aws/aws-sdk-go-v2/config"
	_ "github.com/aws/aws-sdk-go-v2/credentials"
	_ "github.com/aws/aws-sdk-go-v2/service/kinesis"
	_ "github.com/aws/smithy-go"
	_ "github.com/go-audio/wav"
	_ "github.com/google/go-cmp/cmp"
	_ "github.com/hashicorp/memberlist"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/valyala/fastjson"
	_ "go.etcd.io/bbolt"
	_ "go.yaml.in/yaml/v3"
	_ "golang.org/x/crypto/argon2"
	_ "golang.org/x/sync/errgroup"
)
