package runtime

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"vscript/engine/errdefs"
)

// classError is an error with a fixed message that still matches an errdefs
// class with errors.Is; it also carries init's errors across the pipe.
type classError struct {
	msg   string
	class error
}

func (e *classError) Error() string { return e.msg }
func (e *classError) Unwrap() error { return e.class }

const maxID = 1<<31 - 1

// ResolveUser resolves a Docker user spec ("", "name", "uid", "uid:gid",
// "name:group", "uid:group") in the /etc/passwd and /etc/group of the root
// filesystem at rootfs, as runc's user.GetExecUser does with Docker's
// defaults (root, gid 0, home "/"):
//
//   - a numeric user not in passwd is used as is, with gid 0 and home "/";
//   - a group given explicitly sets the gid (a number not in group is used as
//     is) and then there are no supplementary groups;
//   - otherwise the supplementary groups are the groups listing the user by
//     name as a member.
//
// groups is what Docker gives setgroups: the primary gid first, then the
// supplementary groups (so busybox's `id` shows groups=0(root),10(wheel)).
func ResolveUser(rootfs, user string) (uid, gid int, groups []int, home string, err error) {
	return resolveUser(newView(rootfs), user)
}

// resolveUser is ResolveUser in a container's view, where /etc/passwd may
// come from a mount.
func resolveUser(v *view, user string) (uid, gid int, groups []int, home string, err error) {
	userArg, groupArg, _ := strings.Cut(user, ":")
	uidArg, uidErr := strconv.Atoi(userArg)
	gidArg, gidErr := strconv.Atoi(groupArg)
	home = "/"

	passwd, err := readDB(v, "/etc/passwd")
	if err != nil {
		return 0, 0, nil, "", err
	}
	matched := ""
	for _, f := range passwd {
		if len(f) < 6 {
			continue
		}
		id, _ := strconv.Atoi(f[2])
		switch {
		case userArg == "":
			if id != 0 {
				continue
			}
		case uidErr == nil:
			if id != uidArg {
				continue
			}
		case f[0] != userArg:
			continue
		}
		matched = f[0]
		uid = id
		gid, _ = strconv.Atoi(f[3])
		home = f[5]
		break
	}
	if matched == "" && userArg != "" {
		if uidErr != nil {
			return 0, 0, nil, "", &classError{
				fmt.Sprintf("unable to find user %s: no matching entries in passwd file", userArg), errdefs.ErrNotFound}
		}
		if uidArg < 0 || uidArg > maxID {
			return 0, 0, nil, "", &classError{fmt.Sprintf("user %s: uid out of range", userArg), errdefs.ErrInvalid}
		}
		uid = uidArg
	}
	if groupArg == "" && matched == "" {
		return uid, gid, []int{gid}, home, nil
	}

	groupDB, err := readDB(v, "/etc/group")
	if err != nil {
		return 0, 0, nil, "", err
	}
	var found []int
	for _, f := range groupDB {
		if len(f) < 3 {
			continue
		}
		id, _ := strconv.Atoi(f[2])
		switch {
		case groupArg == "":
			if len(f) < 4 || !member(f[3], matched) {
				continue
			}
		case gidErr == nil:
			if id != gidArg {
				continue
			}
		case f[0] != groupArg:
			continue
		}
		found = append(found, id)
	}
	var sgids []int
	switch {
	case groupArg == "":
		sgids = found
	case len(found) > 0:
		gid = found[0]
	case gidErr != nil:
		return 0, 0, nil, "", &classError{
			fmt.Sprintf("unable to find group %s: no matching entries in group file", groupArg), errdefs.ErrNotFound}
	case gidArg < 0 || gidArg > maxID:
		return 0, 0, nil, "", &classError{fmt.Sprintf("group %s: gid out of range", groupArg), errdefs.ErrInvalid}
	default:
		gid = gidArg
	}
	return uid, gid, append([]int{gid}, sgids...), home, nil
}

func member(list, name string) bool {
	for _, m := range strings.Split(list, ",") {
		if strings.TrimSpace(m) == name {
			return true
		}
	}
	return false
}

// readDB reads a colon-separated database (passwd, group) in the view. A
// missing file reads as empty, as runc treats it.
func readDB(v *view, name string) ([][]string, error) {
	f, err := v.open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	defer f.Close()
	var rows [][]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		rows = append(rows, strings.Split(line, ":"))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return rows, nil
}
