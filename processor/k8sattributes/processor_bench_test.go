//go:build !nokubernetes

package k8sattributes

import (
	"context"
	"fmt"
	"testing"

	"go.opentelemetry.io/collector/pdata/plog"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
)

// BenchmarkConsume: an encoded log batch of 100 resources (10 records each), as a node agent's
// filelog receiver sends, whose pods are known (matched) or not (passed on untouched).
func BenchmarkConsume(b *testing.B) {
	for _, known := range []bool{true, false} {
		b.Run(fmt.Sprintf("known=%v", known), func(b *testing.B) {
			var pods []*corev1.Pod
			for i := range 100 {
				pods = append(pods, pod(fmt.Sprintf("p-%d", i), fmt.Sprintf("uid-%d", i), fmt.Sprintf("10.1.0.%d", i),
					metav1.OwnerReference{Kind: "ReplicaSet", Name: "shop-abc"}, map[string]string{"app": "shop", "pod-template-hash": "abc"}))
			}
			f := start(b, nil, pods...)
			ld := plog.NewLogs()
			for i := range 100 {
				rl := ld.ResourceLogs().AppendEmpty()
				uid := fmt.Sprintf("uid-%d", i)
				if !known {
					uid = "other-" + uid
				}
				rl.Resource().Attributes().PutStr("k8s.pod.uid", uid)
				lr := rl.ScopeLogs().AppendEmpty().LogRecords()
				for range 10 {
					lr.AppendEmpty().Body().SetStr("GET /cart 200 12ms")
				}
			}
			enc, _ := (&plog.ProtoMarshaler{}).MarshalLogs(ld)
			p := f.proc.(*processor)
			p.next = component.Discard
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				bt, err := batch.FromEncoded(batch.Logs, enc)
				if err != nil {
					b.Fatal(err)
				}
				if err := p.Consume(context.Background(), bt); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*1000), "ns/record")
		})
	}
	// The peer: decoding the same batch for reading, which any processor that looks at resources
	// pays; the difference is the lookup and, for known pods, the copy and the attributes.
	b.Run("decode-only", func(b *testing.B) {
		ld := plog.NewLogs()
		for i := range 100 {
			rl := ld.ResourceLogs().AppendEmpty()
			rl.Resource().Attributes().PutStr("k8s.pod.uid", fmt.Sprintf("uid-%d", i))
			lr := rl.ScopeLogs().AppendEmpty().LogRecords()
			for range 10 {
				lr.AppendEmpty().Body().SetStr("GET /cart 200 12ms")
			}
		}
		enc, _ := (&plog.ProtoMarshaler{}).MarshalLogs(ld)
		b.ReportAllocs()
		for b.Loop() {
			bt, err := batch.FromEncoded(batch.Logs, enc)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := bt.Logs(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*1000), "ns/record")
	})
}
