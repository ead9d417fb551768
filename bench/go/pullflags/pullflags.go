// Package pullflags is the command line both benchmark programs share, so the Go face
// and its peer are asked for exactly the same work.
package pullflags

import (
	"flag"
	"fmt"
	"os"
	"sync"
	"time"
)

// Job is one benchmark run: pull Location N times at once, into memory or to files.
type Job struct {
	Location string
	Output   string // "" = into memory; else a file (OUTPUT.N for goroutine N > 0)
	N        int
	Insecure bool
}

// Parse reads the flags: [-o OUTPUT] [-n GOROUTINES] [-insecure] LOCATION.
func Parse() Job {
	var j Job
	flag.StringVar(&j.Output, "o", "", "write the module to this file instead of memory")
	flag.IntVar(&j.N, "n", 1, "pulls at once, one goroutine each")
	flag.BoolVar(&j.Insecure, "insecure", false, "plain HTTP to the registry")
	flag.Parse()
	if flag.NArg() != 1 || j.N < 1 {
		fmt.Fprintf(os.Stderr, "usage: %s [-o OUTPUT] [-n GOROUTINES] [-insecure] LOCATION\n", os.Args[0])
		os.Exit(2)
	}
	j.Location = flag.Arg(0)
	return j
}

// Run calls pull once per goroutine and exits non-zero on any failure; pull returns
// the module's size.
func (j Job) Run(pull func(output string) (int64, error)) {
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, j.N)
	sizes := make([]int64, j.N)
	for i := 0; i < j.N; i++ {
		output := j.Output
		if output != "" && i > 0 {
			output = fmt.Sprintf("%s.%d", j.Output, i)
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			sizes[i], errs[i] = pull(output)
		}(i)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			fmt.Fprintln(os.Stderr, "pull:", err)
			os.Exit(1)
		}
	}
	fmt.Printf("%d pulls of %d bytes in %.3f s\n", j.N, sizes[0], time.Since(start).Seconds())
}
