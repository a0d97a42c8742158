//go:build linux

package cow

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

// BenchmarkCommit1000: the commit of 1,000 new files (in 20 directories)
// of a branch beside the workdir: journal, renames, syncs. Only Commit is
// timed.
func BenchmarkCommit1000(b *testing.B) {
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		top := b.TempDir()
		work := filepath.Join(top, "work")
		os.Mkdir(work, 0o755)
		base := filepath.Join(top, "storage")
		if err := PrepareBase(base); err != nil {
			b.Fatal(err)
		}
		w, _ := filepath.EvalSymlinks(work)
		br, err := Create(Options{Workdir: w, Base: base})
		if err != nil {
			b.Fatal(err)
		}
		for d := 0; d < 20; d++ {
			if err := br.Mkdir("d"+strconv.Itoa(d), 0o755); err != nil {
				b.Fatal(err)
			}
		}
		for f := 0; f < 1000; f++ {
			fd, err := br.Open("d"+strconv.Itoa(f%20)+"/f"+strconv.Itoa(f), unix.O_WRONLY|unix.O_CREAT, 0o644)
			if err != nil {
				b.Fatal(err)
			}
			unix.Write(fd, []byte("file "+strconv.Itoa(f)+"\n"))
			unix.Close(fd)
		}
		b.StartTimer()
		changes, err := br.Commit()
		b.StopTimer()
		if err != nil || len(changes) != 1020 {
			b.Fatalf("commit: %d changes, %v", len(changes), err)
		}
		br.Close()
	}
}
