package main

import (
	"errors"
	"flag"
	"io"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestParseArgs(t *testing.T) {
	tests := []struct {
		name         string
		args         []string
		wantOperands []string
		wantOut      string
		wantForce    bool
		wantErr      error
	}{
		{"flags first", []string{"-out", "NEW", "OLD"}, []string{"OLD"}, "NEW", false, nil},
		{"flags after the operand", []string{"OLD", "--out", "NEW"}, []string{"OLD"}, "NEW", false, nil},
		{"flags between operands", []string{"A", "-force", "B", "-out=N", "C"}, []string{"A", "B", "C"}, "N", true, nil},
		{"a bool flag takes no value", []string{"-force", "A"}, []string{"A"}, "", true, nil},
		{"dashes end the flags", []string{"A", "--", "-out", "-h"}, []string{"A", "-out", "-h"}, "", false, nil},
		{"dashes as a flag's value", []string{"-out", "--", "A", "-force"}, []string{"A"}, "--", true, nil},
		{"a lone dash is an operand", []string{"-", "-force"}, []string{"-"}, "", true, nil},
		{"help", []string{"init", "-h"}, nil, "", false, flag.ErrHelp},
		{"unknown flag after an operand", []string{"A", "-nope"}, nil, "", false, errors.New("any")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := commandFlags("test", "usage\n", io.Discard)
			out := fs.String("out", "", "")
			force := fs.Bool("force", false, "")
			err := parseArgs(fs, tt.args)
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("parseArgs(%q) = %v, want nil", tt.args, err)
			case tt.wantErr != nil && err == nil:
				t.Fatalf("parseArgs(%q) = nil, want an error", tt.args)
			case errors.Is(tt.wantErr, flag.ErrHelp) && !errors.Is(err, flag.ErrHelp):
				t.Fatalf("parseArgs(%q) = %v, want flag.ErrHelp", tt.args, err)
			case err != nil:
				return
			}
			if diff := cmp.Diff(tt.wantOperands, fs.Args(), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("parseArgs(%q): operands (-want +got):\n%s", tt.args, diff)
			}
			if *out != tt.wantOut || *force != tt.wantForce {
				t.Errorf("parseArgs(%q): -out %q -force %v, want %q %v", tt.args, *out, *force, tt.wantOut, tt.wantForce)
			}
		})
	}
}

func TestParseCommandHelp(t *testing.T) {
	fs := commandFlags("test", "usage\n", io.Discard)
	if err := parseCommand(fs, []string{"x", "-h"}); !errors.Is(err, errHelp) {
		t.Errorf("parseCommand(-h) = %v, want errHelp", err)
	}
	fs = commandFlags("test", "usage\n", io.Discard)
	if err := parseCommand(fs, []string{"-nope"}); !errors.Is(err, errUsage) {
		t.Errorf("parseCommand(-nope) = %v, want errUsage", err)
	}
}
