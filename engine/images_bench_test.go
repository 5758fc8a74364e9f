package engine

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// BenchmarkImageBuildDataPacked is the notes' data-packed build (FROM
// busybox, ADD htdocs/, VOLUME): cold, every step runs (the site changes
// each time, so ADD makes a new layer and VOLUME a new image); cached,
// nothing changes and every step comes from the cache. Goals: 50 ms and
// 5 ms.
func BenchmarkImageBuildDataPacked(b *testing.B) {
	for _, cold := range []bool{true, false} {
		name := "cached"
		if cold {
			name = "cold"
		}
		b.Run(name, func(b *testing.B) {
			e, _ := ioEngine(b)
			dir := b.TempDir()
			writeTree(b, dir, map[string]string{"htdocs/index.html": "<h1>data</h1>\n", "htdocs/css/site.css": "h1 {}\n",
				"htdocs/img/logo.svg": "<svg/>\n"})
			inMountNS(b, func() error {
				if _, err := buildIn(e, dir, "datapacked", dataPacked, false); err != nil {
					return err
				}
				var times []time.Duration
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if cold {
						b.StopTimer()
						writeTree(b, dir, map[string]string{"htdocs/index.html": fmt.Sprintf("<h1>%d</h1>\n", i)})
						b.StartTimer()
					}
					start := time.Now()
					if _, err := buildIn(e, dir, "datapacked", dataPacked, false); err != nil {
						return err
					}
					times = append(times, time.Since(start))
				}
				b.StopTimer()
				reportTimes(b, times)
				return nil
			})
		})
	}
}

// BenchmarkImageLoad100MiB loads a docker archive of a 100 MiB image (a
// hundred 1 MiB files of random bytes) into a fresh state directory each
// time, beside `tar -x` of the same file: MiB/s for both.
func BenchmarkImageLoad100MiB(b *testing.B) {
	src, _ := ioEngine(b)
	archive := filepath.Join(b.TempDir(), "big.tar")
	{
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		rnd := rand.New(rand.NewSource(1))
		chunk := make([]byte, 1<<20)
		for i := 0; i < 100; i++ {
			rnd.Read(chunk)
			ioCheck(b, tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("data/%03d.bin", i), Mode: 0o644,
				Size: int64(len(chunk)), ModTime: time.Unix(1600000000, 0)}))
			_, err := tw.Write(chunk)
			ioCheck(b, err)
		}
		ioCheck(b, tw.Close())
		l, err := src.images.WriteLayer(&buf)
		ioCheck(b, err)
		img, err := src.images.Create(v1.Config{Cmd: []string{"sh"}}, nil, l)
		ioCheck(b, err)
		ioCheck(b, src.images.Tag(img, "big:latest"))
		ioCheck(b, src.ImageSave(context.Background(), []string{"big"}, archive, FormatDocker))
	}
	fi, err := os.Stat(archive)
	ioCheck(b, err)
	mib := float64(fi.Size()) / (1 << 20)

	b.Run("image_load", func(b *testing.B) {
		var total time.Duration
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			e, _ := ioEngine(b)
			b.StartTimer()
			start := time.Now()
			if _, err := e.ImageLoad(context.Background(), archive); err != nil {
				b.Fatal(err)
			}
			total += time.Since(start)
		}
		b.ReportMetric(mib*float64(b.N)/total.Seconds(), "MiB/s")
	})
	b.Run("tar-x", func(b *testing.B) {
		var total time.Duration
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			dir := b.TempDir()
			b.StartTimer()
			start := time.Now()
			if out, err := exec.Command("tar", "-xf", archive, "-C", dir).CombinedOutput(); err != nil {
				b.Fatalf("tar -x: %v\n%s", err, out)
			}
			total += time.Since(start)
		}
		b.ReportMetric(mib*float64(b.N)/total.Seconds(), "MiB/s")
	})
}
