//go:build linux

package limits

import (
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// GPUAccess is what a GPU selection grants.
type GPUAccess struct {
	// Devices are the device nodes to grant read and write (and ioctl) on.
	Devices []string
	// Read are driver information paths to grant read on.
	Read []string
	// Env are variables that tell CUDA and ROCm which devices to use.
	Env map[string]string
}

// GPUs resolves a selection under root (normally "/"): nil selects no GPU;
// an empty, non-nil slice selects all; indices select those NVIDIA devices
// and DRM render nodes. Devices that do not exist are left out. Explicit
// indices also set CUDA_VISIBLE_DEVICES and ROCR_VISIBLE_DEVICES.
func GPUs(root string, sel []uint32) GPUAccess {
	var a GPUAccess
	if sel == nil {
		return a
	}
	dev := filepath.Join(root, "dev")
	exists := func(p string) bool { _, err := os.Stat(p); return err == nil }
	add := func(p string) {
		if exists(p) {
			a.Devices = append(a.Devices, p)
		}
	}
	all := len(sel) == 0
	wanted := map[uint32]bool{}
	for _, i := range sel {
		wanted[i] = true
	}
	ents, _ := os.ReadDir(dev)
	for _, e := range ents {
		if i, ok := nvidiaIndex(e.Name()); ok {
			if all || wanted[i] {
				add(filepath.Join(dev, e.Name()))
			}
		}
	}
	add(filepath.Join(dev, "nvidiactl"))
	for _, n := range []string{"nvidia-uvm", "nvidia-uvm-tools", "nvidia-modeset"} {
		add(filepath.Join(dev, n))
	}
	// DRM render nodes are renderD128, renderD129, … for GPU 0, 1, …
	dri := filepath.Join(dev, "dri")
	ents, _ = os.ReadDir(dri)
	for _, e := range ents {
		if n, ok := strings.CutPrefix(e.Name(), "renderD"); ok {
			i, err := strconv.Atoi(n)
			if err == nil && (all || wanted[uint32(i-128)]) {
				add(filepath.Join(dri, e.Name()))
			}
		}
	}
	for _, p := range []string{"proc/driver/nvidia", "sys/module/nvidia"} {
		if full := filepath.Join(root, p); exists(full) {
			a.Read = append(a.Read, full)
		}
	}
	if !all {
		idx := make([]int, 0, len(sel))
		for i := range wanted {
			idx = append(idx, int(i))
		}
		sort.Ints(idx)
		s := make([]string, len(idx))
		for k, i := range idx {
			s[k] = strconv.Itoa(i)
		}
		list := strings.Join(s, ",")
		a.Env = map[string]string{"CUDA_VISIBLE_DEVICES": list, "ROCR_VISIBLE_DEVICES": list}
	}
	return a
}

// nvidiaIndex returns N for a device named nvidiaN (nvidiactl and
// nvidia-uvm are not numbered devices).
func nvidiaIndex(name string) (uint32, bool) {
	digits, ok := strings.CutPrefix(name, "nvidia")
	if !ok || digits == "" || strings.TrimLeft(digits, "0123456789") != "" {
		return 0, false
	}
	i, err := strconv.ParseUint(digits, 10, 32)
	return uint32(i), err == nil
}
