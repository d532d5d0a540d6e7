package queue

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The crash test runs the test binary as a child that writes to a WAL as fast as it can,
// prints "P seq" after every Put that returned nil and "A seq" before acknowledging a
// record, and is killed with SIGKILL mid-load. Whatever was printed as put must then be
// replayed, unless it was acknowledged.
const (
	crashDirEnv   = "VIGIL_QUEUE_CRASH_DIR"
	crashFsyncEnv = "VIGIL_QUEUE_CRASH_FSYNC"
)

func crashChild(dir string, fsync FsyncPolicy) {
	w, err := openWAL(WALOptions{
		Dir:           dir,
		Options:       Options{Capacity: 1 << 20},
		Fsync:         fsync,
		FsyncInterval: 20 * time.Millisecond,
		SegmentBytes:  128 << 10,
		Logger:        discard,
	}, walConfig{checkpointEvery: 10 * time.Millisecond})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var mu sync.Mutex
	say := func(kind byte, seq int) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(os.Stdout, "%c %d\n", kind, seq) // one write(2) per line: unbuffered
	}
	go func() {
		for {
			b, done, ok := w.Get(context.Background())
			if !ok {
				return
			}
			seq, err := batchSeq(b)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			if seq%97 == 5 {
				continue // stuck in flight: holds its segment and the checkpoint's front
			}
			say('A', seq)
			done(true)
		}
	}()
	const writers = 4
	var wg sync.WaitGroup
	for p := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				seq := p + writers*i
				b, err := mkBatch(seq, 10)
				if err == nil {
					err = w.Put(context.Background(), b)
				}
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(1)
				}
				say('P', seq)
			}
		}()
	}
	wg.Wait()
}

func TestWALSurvivesKill(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a child process")
	}
	for _, fsync := range []FsyncPolicy{FsyncAlways, FsyncInterval} {
		for _, after := range []int{300, 1500} {
			t.Run(fmt.Sprintf("%s/kill after %d puts", fsync, after), func(t *testing.T) {
				dir := t.TempDir()
				cmd := exec.Command(os.Args[0], "-test.run=^$")
				cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashFsyncEnv+"="+string(fsync))
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				stdout, err := cmd.StdoutPipe()
				if err != nil {
					t.Fatal(err)
				}
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				puts, acks := map[int]bool{}, map[int]bool{}
				timer := time.AfterFunc(time.Minute, func() { _ = cmd.Process.Kill() })
				defer timer.Stop()
				sc := bufio.NewScanner(stdout)
				killed := false
				for sc.Scan() {
					var kind byte
					var seq int
					if _, err := fmt.Sscanf(sc.Text(), "%c %d", &kind, &seq); err != nil {
						t.Fatalf("child said %q", sc.Text())
					}
					if kind == 'P' {
						puts[seq] = true
					} else {
						acks[seq] = true
					}
					if len(puts) == after && !killed {
						killed = true
						_ = cmd.Process.Signal(syscall.SIGKILL)
					}
				}
				err = cmd.Wait()
				if !killed {
					t.Fatalf("child ended on its own: %v\n%s", err, stderr.String())
				}

				w := open(t, WALOptions{Dir: dir, Options: Options{Capacity: 1 << 20}, Logger: discard})
				if s := w.Stats(); s.Corruptions != 0 {
					t.Fatalf("corruption after kill -9: %+v", s)
				}
				replayed := map[int]bool{}
				for _, s := range drain(t, w) {
					replayed[s] = true
				}
				lost := 0
				for seq := range puts {
					if !replayed[seq] && !acks[seq] {
						lost++
						if lost < 10 {
							t.Errorf("batch %d: Put returned nil, never acknowledged, not replayed", seq)
						}
					}
				}
				if lost > 0 {
					t.Fatalf("%d of %d acknowledged batches lost", lost, len(puts))
				}
				dup := 0
				for seq := range acks {
					if replayed[seq] {
						dup++
					}
				}
				t.Logf("%d puts seen, %d acked, %d replayed (%d of them acked before the kill: duplicates)",
					len(puts), len(acks), len(replayed), dup)
			})
		}
	}
}
