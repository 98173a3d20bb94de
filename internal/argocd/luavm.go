/*
Copyright 2026.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

// Package argocd runs the Argo CD resource customizations in config/argocd the way Argo
// CD runs them (util/lua in the argo-cd repository), so they can be tested without an
// Argo CD: the same Lua engine (gopher-lua), the same libraries, the same global `obj`,
// the same conversion of the returned table through JSON.
//
// Only what decides the result is reproduced. Argo CD also loads a restricted `os`
// library; the scripts here do not use it, so it is left out and any use of it fails.
package argocd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// Health statuses Argo CD accepts from a health script.
const (
	HealthUnknown     = "Unknown"
	HealthProgressing = "Progressing"
	HealthSuspended   = "Suspended"
	HealthHealthy     = "Healthy"
	HealthDegraded    = "Degraded"
	HealthMissing     = "Missing"
)

// invalidHealthStatus is the message Argo CD reports for a status it does not know.
const invalidHealthStatus = "Lua returned an invalid health status"

// scriptTimeout is Argo CD's bound on one script run.
const scriptTimeout = time.Second

// HealthStatus is what a health script returns.
type HealthStatus struct {
	Status  string `json:"status"`
	Message string `json:"message,omitempty"`
}

// ResourceAction is one entry of what an action discovery script returns.
type ResourceAction struct {
	Name        string `json:"name"`
	Disabled    bool   `json:"disabled"`
	DisplayName string `json:"displayName,omitempty"`
	IconClass   string `json:"iconClass,omitempty"`
}

// Options choose the Lua libraries, as Argo CD's VM.UseOpenLibs does.
type Options struct {
	// UseOpenLibs loads every standard library. Argo CD sets it for its built-in scripts
	// and, for scripts from argocd-cm, only when resource.customizations.useOpenLibs.<group_kind>
	// is true. Without it a script has the base, table and package libraries only: no
	// string library.
	UseOpenLibs bool
}

// ExecuteHealth runs a health script on obj and returns the status it reports.
func ExecuteHealth(obj map[string]any, script string, opts Options) (*HealthStatus, error) {
	out, err := run(obj, script, opts)
	if err != nil {
		return nil, err
	}
	var hs HealthStatus
	if err := json.Unmarshal(out, &hs); err != nil {
		return nil, fmt.Errorf("decoding health status %s: %w", out, err)
	}
	switch hs.Status {
	case HealthUnknown, HealthProgressing, HealthSuspended, HealthHealthy, HealthDegraded, HealthMissing:
		return &hs, nil
	}
	return &HealthStatus{Status: HealthUnknown, Message: invalidHealthStatus}, nil
}

// ExecuteDiscovery runs an action discovery script on obj and returns the actions it
// offers, in no particular order (Argo CD reads them from a JSON object).
func ExecuteDiscovery(obj map[string]any, script string, opts Options) ([]ResourceAction, error) {
	out, err := run(obj, script, opts)
	if err != nil {
		return nil, err
	}
	// An empty Lua table encodes as an empty list: no actions.
	if string(out) == "[]" {
		return nil, nil
	}
	var byName map[string]json.RawMessage
	if err := json.Unmarshal(out, &byName); err != nil {
		return nil, fmt.Errorf("decoding actions %s: %w", out, err)
	}
	actions := make([]ResourceAction, 0, len(byName))
	for name, raw := range byName {
		action := ResourceAction{Name: name}
		// An action given as {} encodes as [] and means enabled with no options.
		if string(raw) != "[]" {
			if err := json.Unmarshal(raw, &action); err != nil {
				return nil, fmt.Errorf("decoding action %q %s: %w", name, raw, err)
			}
			action.Name = name
		}
		actions = append(actions, action)
	}
	return actions, nil
}

// ExecuteAction runs an action script on obj and returns the object it returns, which
// Argo CD then patches into the cluster. Only the original form of action (return the
// modified obj) is supported; the scripts here need nothing else.
func ExecuteAction(obj map[string]any, script string, opts Options) (map[string]any, error) {
	out, err := run(obj, script, opts)
	if err != nil {
		return nil, err
	}
	if len(out) > 0 && out[0] == '[' {
		return nil, fmt.Errorf("action returned a list of impacted resources, not supported here: %s", out)
	}
	var changed map[string]any
	if err := json.Unmarshal(out, &changed); err != nil {
		return nil, fmt.Errorf("decoding action result %s: %w", out, err)
	}
	return restoreEmptyObjects(changed, obj), nil
}

// run executes script with obj as the global `obj` and returns its result as JSON.
func run(obj map[string]any, script string, opts Options) ([]byte, error) {
	l := lua.NewState(lua.Options{SkipOpenLibs: !opts.UseOpenLibs})
	defer l.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
	} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(lib.open), NRet: 0, Protect: true}, lua.LString(lib.name)); err != nil {
			return nil, fmt.Errorf("opening Lua library %s: %w", lib.name, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), scriptTimeout)
	defer cancel()
	l.SetContext(ctx)

	l.SetGlobal("obj", toLua(l, obj))
	if err := l.DoString(script); err != nil {
		return nil, err
	}
	ret := l.Get(-1)
	if ret.Type() != lua.LTTable {
		return nil, fmt.Errorf("expect table output from Lua script, not %s", ret.Type())
	}
	return encodeJSON(ret, map[*lua.LTable]bool{})
}

// toLua converts a decoded JSON or unstructured value to Lua, as Argo CD's decodeValue
// does: objects and lists become tables, numbers of any Go type become Lua numbers.
func toLua(l *lua.LState, value any) lua.LValue {
	switch v := value.(type) {
	case nil:
		return lua.LNil
	case bool:
		return lua.LBool(v)
	case string:
		return lua.LString(v)
	case float64:
		return lua.LNumber(v)
	case int:
		return lua.LNumber(v)
	case int32:
		return lua.LNumber(v)
	case int64:
		return lua.LNumber(v)
	case json.Number:
		return lua.LString(v)
	case []any:
		t := l.CreateTable(len(v), 0)
		for _, item := range v {
			t.Append(toLua(l, item))
		}
		return t
	case map[string]any:
		t := l.CreateTable(0, len(v))
		for key, item := range v {
			t.RawSetH(lua.LString(key), toLua(l, item))
		}
		return t
	}
	return lua.LNil
}

var (
	errNestedTable = errors.New("cannot encode recursively nested tables to JSON")
	errSparseArray = errors.New("cannot encode sparse array")
	errMixedKeys   = errors.New("cannot encode mixed or invalid key types")
)

// encodeJSON encodes a Lua value as layeh.com/gopher-json does for Argo CD: a table
// whose first key is a number is a list (keys 1..n, no gaps), one whose first key is a
// string is an object, and an empty table is an empty list.
func encodeJSON(value lua.LValue, visited map[*lua.LTable]bool) ([]byte, error) {
	switch v := value.(type) {
	case lua.LBool:
		return json.Marshal(bool(v))
	case lua.LNumber:
		return json.Marshal(float64(v))
	case lua.LString:
		return json.Marshal(string(v))
	case *lua.LNilType:
		return []byte("null"), nil
	case *lua.LTable:
		if visited[v] {
			return nil, errNestedTable
		}
		visited[v] = true
		defer delete(visited, v)
		key, item := v.Next(lua.LNil)
		switch key.Type() {
		case lua.LTNil:
			return []byte("[]"), nil
		case lua.LTNumber:
			list := []json.RawMessage{}
			for expected := lua.LNumber(1); key != lua.LNil; expected++ {
				if key != expected {
					if key.Type() != lua.LTNumber {
						return nil, errMixedKeys
					}
					return nil, errSparseArray
				}
				b, err := encodeJSON(item, visited)
				if err != nil {
					return nil, err
				}
				list = append(list, b)
				key, item = v.Next(key)
			}
			return json.Marshal(list)
		case lua.LTString:
			object := map[string]json.RawMessage{}
			for key != lua.LNil {
				if key.Type() != lua.LTString {
					return nil, errMixedKeys
				}
				b, err := encodeJSON(item, visited)
				if err != nil {
					return nil, err
				}
				object[key.String()] = b
				key, item = v.Next(key)
			}
			return json.Marshal(object)
		}
		return nil, errMixedKeys
	}
	return nil, fmt.Errorf("cannot encode %s to JSON", value.Type())
}

// restoreEmptyObjects undoes what the JSON encoding does to an empty object the script
// left alone: it comes back as an empty list. Argo CD's cleanReturnedObj puts the
// original back in that case, recursing through objects and lists.
func restoreEmptyObjects(changed, original map[string]any) map[string]any {
	for key, before := range original {
		after, ok := changed[key]
		if !ok {
			continue
		}
		switch a := after.(type) {
		case map[string]any:
			if b, ok := before.(map[string]any); ok {
				changed[key] = restoreEmptyObjects(a, b)
			}
		case []any:
			switch b := before.(type) {
			case map[string]any:
				if len(a) == 0 {
					changed[key] = b
				}
			case []any:
				changed[key] = restoreEmptyObjectsInList(a, b)
			}
		}
	}
	return changed
}

func restoreEmptyObjectsInList(changed, original []any) []any {
	for i := range changed {
		if i >= len(original) {
			break
		}
		switch a := changed[i].(type) {
		case map[string]any:
			if b, ok := original[i].(map[string]any); ok {
				changed[i] = restoreEmptyObjects(a, b)
			}
		case []any:
			if b, ok := original[i].([]any); ok {
				changed[i] = restoreEmptyObjectsInList(a, b)
			}
		}
	}
	return changed
}
