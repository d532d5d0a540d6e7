package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// dependabotConfig is the part of Dependabot's version 2 schema the repository uses; decoding is
// strict, so a misspelt key fails.
type dependabotConfig struct {
	Version int `json:"version"`
	Updates []struct {
		Ecosystem   string   `json:"package-ecosystem"`
		Directory   string   `json:"directory,omitempty"`
		Directories []string `json:"directories,omitempty"`
		Schedule    struct {
			Interval string `json:"interval"`
		} `json:"schedule"`
		Groups map[string]struct {
			Patterns []string `json:"patterns"`
		} `json:"groups,omitempty"`
	} `json:"updates"`
}

// TestDependabot: .github/dependabot.yml decodes strictly, names known ecosystems and intervals,
// points at directories that hold what it updates, and covers every Go module in the repository
// (the benchmark peers are modules of their own), the workflows' actions and the Dockerfile.
// actionlint checks the workflows themselves (make lint-workflows).
func TestDependabot(t *testing.T) {
	b, err := os.ReadFile("../../.github/dependabot.yml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg dependabotConfig
	if err := yaml.UnmarshalStrict(b, &cfg); err != nil {
		t.Fatalf("dependabot.yml: %v", err)
	}
	if cfg.Version != 2 {
		t.Errorf("version %d, want 2", cfg.Version)
	}
	wants := map[string]string{"gomod": "go.mod", "docker": "Dockerfile", "github-actions": ""}
	covered := map[string][]string{}
	for _, u := range cfg.Updates {
		want, ok := wants[u.Ecosystem]
		if !ok {
			t.Errorf("ecosystem %q is not one this repository has", u.Ecosystem)
		}
		if !slices.Contains([]string{"daily", "weekly", "monthly"}, u.Schedule.Interval) {
			t.Errorf("%s: schedule.interval %q", u.Ecosystem, u.Schedule.Interval)
		}
		dirs := u.Directories
		if u.Directory != "" {
			dirs = append(dirs, u.Directory)
		}
		if len(dirs) == 0 {
			t.Errorf("%s: no directory", u.Ecosystem)
		}
		for _, d := range dirs {
			covered[u.Ecosystem] = append(covered[u.Ecosystem], strings.TrimPrefix(d, "/"))
			if want == "" {
				continue
			}
			if _, err := os.Stat(filepath.Join("../..", d, want)); err != nil {
				t.Errorf("%s: %s holds no %s", u.Ecosystem, d, want)
			}
		}
		for name, g := range u.Groups {
			if len(g.Patterns) == 0 {
				t.Errorf("%s: group %s has no patterns", u.Ecosystem, name)
			}
		}
	}
	// Every go.mod of the repository is updated.
	_ = filepath.WalkDir("../..", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.Name() != "go.mod" {
			return nil
		}
		dir, _ := filepath.Rel("../..", filepath.Dir(path))
		if dir == "." {
			dir = ""
		}
		if !slices.Contains(covered["gomod"], dir) {
			t.Errorf("the Go module in /%s is not in dependabot.yml", dir)
		}
		return nil
	})
	if len(covered["github-actions"]) == 0 || len(covered["docker"]) == 0 {
		t.Error("dependabot.yml does not update the workflows' actions and the Dockerfile's images")
	}
}
