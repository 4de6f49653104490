package main

// samsactl log dump / log verify: samsa's on-disk logs, read offline
// through samsa/tools/logtool. No broker is involved.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"

	"samsa/tools/ctl"
	"samsa/tools/logtool"
)

func init() {
	commands = append(commands,
		&command{"log dump", "FILE [--records] [--max-value-bytes N]",
			"print a segment (.log), .index, .timeindex, producer .snapshot or leader-epoch-checkpoint file, as kafka-dump-log does", logDump},
		&command{"log verify", "DATA_DIR",
			"check every partition log under DATA_DIR offline (framing, CRCs, offsets, indexes, epochs); exit 1 on damage", logVerify},
	)
}

// fileError is a log file or directory that cannot be read; missing, it
// is "not found" (exit 4).
type fileError struct{ err error }

func (f *fileError) Error() string { return f.err.Error() }
func (f *fileError) Unwrap() error { return f.err }
func (f *fileError) Is(target error) bool {
	return target == ctl.ErrNotFound && errors.Is(f.err, fs.ErrNotExist)
}

func logDump(e *env, c *command, args []string) error {
	fset := e.flagSet(c)
	records := fset.Bool("records", false, "also print every record (offset, timestamp, key, value, headers)")
	maxValue := fset.Int("max-value-bytes", 0, "truncate printed keys and values to `N` bytes (0: 64 for text, all for JSON)")
	pos, err := e.parse(fset, c, args)
	if err != nil {
		return err
	}
	if err := oneArg(c, pos, "FILE"); err != nil {
		return err
	}
	if *maxValue < 0 {
		return usagef(c, "--max-value-bytes must be at least 0")
	}
	if err := logtool.Dump(e.stdout, pos[0], logtool.DumpOptions{Records: *records, JSON: e.json(), MaxValueBytes: *maxValue}); err != nil {
		return &fileError{err}
	}
	return nil
}

// VerifyResult is what log verify prints as JSON.
type VerifyResult struct {
	DataDir    string          `json:"data_dir"`
	Partitions int64           `json:"partitions"`
	Segments   int64           `json:"segments"`
	Batches    int64           `json:"batches"`
	Records    int64           `json:"records"`
	Bytes      int64           `json:"bytes"`
	Damaged    bool            `json:"damaged"`
	Problems   []VerifyProblem `json:"problems"`
}

// VerifyProblem is one problem log verify found.
type VerifyProblem struct {
	Path   string `json:"path"`
	Offset int64  `json:"offset"` // byte position in the file, -1 if none
	Kind   string `json:"kind"`
	Detail string `json:"detail"`
	Damage bool   `json:"damage"` // false: a warning
}

func logVerify(e *env, c *command, args []string) error {
	fset := e.flagSet(c)
	pos, err := e.parse(fset, c, args)
	if err != nil {
		return err
	}
	if err := oneArg(c, pos, "DATA_DIR"); err != nil {
		return err
	}
	dir := pos[0]
	var lines io.Writer = e.stdout
	if e.json() {
		lines = io.Discard
	}
	rep, err := logtool.Verify(lines, dir)
	if err != nil {
		return &fileError{err}
	}
	damage := 0
	for _, p := range rep.Problems {
		if p.Damage {
			damage++
		}
	}
	if e.json() {
		out := VerifyResult{DataDir: dir, Partitions: rep.Partitions, Segments: rep.Segments, Batches: rep.Batches,
			Records: rep.Records, Bytes: rep.Bytes, Damaged: rep.Damaged(), Problems: []VerifyProblem{}}
		for _, p := range rep.Problems {
			out.Problems = append(out.Problems, VerifyProblem{p.Path, p.Offset, p.Kind, p.Detail, p.Damage})
		}
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(e.stdout, "%d partitions, %d segments, %d batches, %d records, %d bytes: %d problems (%d damage, %d warnings)\n",
			rep.Partitions, rep.Segments, rep.Batches, rep.Records, rep.Bytes, len(rep.Problems), damage, len(rep.Problems)-damage)
	}
	if rep.Damaged() {
		return fmt.Errorf("log verify found damage in %s (%d damaged): the problems are listed above; samsa's recovery repairs only a torn tail", dir, damage)
	}
	return nil
}
