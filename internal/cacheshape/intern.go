package cacheshape

import (
	"strings"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

// Interning. Every object a watch event brings is decoded with its own copy of every
// string, and the cache keeps them: at 1,000 releases ~10,000 cached objects each hold
// their own "app.kubernetes.io/managed-by", namespace, owner's kind and UID, condition
// types and reasons, container names and images, a few dozen small strings apiece. The
// same few thousand values repeat across them. Intern replaces each such string with
// one shared copy before the object enters the cache, and the decoded copies become
// garbage with the rest of the event.
//
// Strings are immutable, so sharing them between cached objects is safe: a read from
// the cache deep-copies the structs and maps, and shares the strings whether interned
// or not. Measured (docs/benchmarks.md): the cached objects of 1,000 releases 52.9 ->
// 45.8 MB with the Job trim; at 100 releases the gain is within the noise.
//
// A table entry costs about as much as the string it shares, so what is interned is
// what repeats. Never: resource versions, IP addresses and container IDs, unique to one
// object and referred to by none; messages that name the object's own children (a
// Deployment's, a release's); strings longer than internMaxLen. An object's own name
// and UID are interned only where other cached objects refer to it by them (owners, and
// Jobs, which the release's status names): a pod's or an EndpointSlice's would only
// fill the table.

// internMaxLen bounds what is interned: label values, names, UIDs, images, reasons and
// most condition messages fit; long messages do not, and seldom repeat.
const internMaxLen = 128

// internGeneration bounds the table. Every revision brings new values (the new
// ReplicaSets', Jobs' and backup files' names), and the ones of objects long gone must
// not stay in the table: it keeps two generations, and a value looked up in the older
// one moves to the newer. Once the newer holds internGeneration values it becomes the
// older, and what was only in the older goes (its objects keep the copy they share).
// At 1,000 releases a revision brings ~10,000 values.
const internGeneration = 1 << 15

// internTable is one shared copy of each interned string, in two generations.
// Transforms run on each informer's own goroutine, hence the lock; an object takes it
// once.
type internTable struct {
	mu            sync.Mutex
	recent, older map[string]string
}

func newInternTable() *internTable {
	return &internTable{recent: map[string]string{}, older: map[string]string{}}
}

var table = newInternTable()

// Intern shares the repeated strings of an object about to enter the cache with the
// objects already there, in place, and returns it. Values are unchanged. Kinds it does
// not know, and tombstones, are returned as they are.
func Intern(obj any) (any, error) {
	table.mu.Lock()
	defer table.mu.Unlock()
	switch o := obj.(type) {
	case *corev1.Pod:
		table.pod(o)
	case *appsv1.ReplicaSet:
		table.replicaSet(o)
	case *appsv1.Deployment:
		table.deployment(o)
	case *batchv1.Job:
		table.job(o)
	case *corev1.Service:
		table.service(o)
	case *discoveryv1.EndpointSlice:
		table.endpointSlice(o)
	case *batchv1.CronJob:
		table.meta(&o.ObjectMeta)
	case *deployv1alpha1.SoftFactoryRelease:
		table.release(o)
	}
	return obj, nil
}

// of is the table's copy of s. A new value is cloned into the table, so the table never
// keeps a larger buffer alive through a string that points into it.
func (t *internTable) of(s string) string {
	if s == "" || len(s) > internMaxLen {
		return s
	}
	if shared, ok := t.recent[s]; ok {
		return shared
	}
	shared, ok := t.older[s]
	if !ok {
		shared = strings.Clone(s)
	}
	t.recent[shared] = shared
	if len(t.recent) >= internGeneration {
		t.older, t.recent = t.recent, map[string]string{}
	}
	return shared
}

// shared is of for Kubernetes' named string types (condition types, phases, protocols).
func shared[S ~string](t *internTable, s S) S {
	return S(t.of(string(s)))
}

func (t *internTable) ptr(p *string) {
	if p != nil {
		*p = t.of(*p)
	}
}

// stringMap is m rebuilt with shared keys and values: assigning to an existing key keeps
// the map's own copy of the key.
func (t *internTable) stringMap(m map[string]string) map[string]string {
	return t.rebuild(m, func(string) bool { return true })
}

// rebuild is m with shared keys, and shared values for the keys sharedValue names.
func (t *internTable) rebuild(m map[string]string, sharedValue func(key string) bool) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		if sharedValue(k) {
			v = t.of(v)
		}
		out[t.of(k)] = v
	}
	return out
}

// repeatedAnnotations are the annotations whose values other cached objects hold too
// (the revision and the backup file are in the release's status, a template's hash and
// revision on the colour's pods' labels). Other values are mostly times (promoted-at,
// scale-down-at), new with every change; others' annotations are gone (OwnAnnotations).
var repeatedAnnotations = map[string]bool{
	deployv1alpha1.RevisionAnnotation:   true,
	deployv1alpha1.BackupFileAnnotation: true,
	TemplateHashAnnotation:              true,
}

// annotations is m rebuilt with shared keys, and shared values where they repeat.
func (t *internTable) annotations(m map[string]string) map[string]string {
	return t.rebuild(m, func(key string) bool { return repeatedAnnotations[key] })
}

// meta interns what an object shares with others: namespace, labels, annotations,
// owners and finalizers; never its resource version.
func (t *internTable) meta(m *metav1.ObjectMeta) {
	m.Namespace = t.of(m.Namespace)
	m.GenerateName = t.of(m.GenerateName)
	m.Labels = t.stringMap(m.Labels)
	m.Annotations = t.annotations(m.Annotations)
	for i := range m.OwnerReferences {
		o := &m.OwnerReferences[i]
		o.APIVersion, o.Kind, o.Name = t.of(o.APIVersion), t.of(o.Kind), t.of(o.Name)
		o.UID = shared(t, o.UID)
	}
	for i := range m.Finalizers {
		m.Finalizers[i] = t.of(m.Finalizers[i])
	}
}

// referredMeta is meta for an object that others name: its children's owner
// references, or the release's status, hold its name and UID too.
func (t *internTable) referredMeta(m *metav1.ObjectMeta) {
	m.Name, m.UID = t.of(m.Name), shared(t, m.UID)
	t.meta(m)
}

func (t *internTable) selector(s *metav1.LabelSelector) {
	if s == nil {
		return
	}
	s.MatchLabels = t.stringMap(s.MatchLabels)
	for i := range s.MatchExpressions {
		e := &s.MatchExpressions[i]
		e.Key = t.of(e.Key)
		e.Operator = shared(t, e.Operator)
		for j := range e.Values {
			e.Values[j] = t.of(e.Values[j])
		}
	}
}

// conditions interns a release's conditions but their messages, which name the
// release's own objects.
func (t *internTable) conditions(cs []metav1.Condition) {
	for i := range cs {
		c := &cs[i]
		c.Type, c.Status, c.Reason = t.of(c.Type), shared(t, c.Status), t.of(c.Reason)
	}
}

func (t *internTable) containers(cs []corev1.Container) {
	for i := range cs {
		cs[i].Name, cs[i].Image = t.of(cs[i].Name), t.of(cs[i].Image)
	}
}

func (t *internTable) pod(p *corev1.Pod) {
	t.meta(&p.ObjectMeta)
	t.containers(p.Spec.InitContainers)
	t.containers(p.Spec.Containers)
	p.Spec.NodeName = t.of(p.Spec.NodeName)
	p.Status.Phase = shared(t, p.Status.Phase)
	p.Status.Reason, p.Status.Message = t.of(p.Status.Reason), t.of(p.Status.Message)
	for i := range p.Status.Conditions {
		c := &p.Status.Conditions[i]
		c.Type, c.Status = shared(t, c.Type), shared(t, c.Status)
		c.Reason, c.Message = t.of(c.Reason), t.of(c.Message)
	}
	for _, statuses := range [][]corev1.ContainerStatus{p.Status.InitContainerStatuses, p.Status.ContainerStatuses} {
		for i := range statuses {
			s := &statuses[i]
			s.Name, s.Image, s.ImageID = t.of(s.Name), t.of(s.Image), t.of(s.ImageID)
			t.containerState(&s.State)
			t.containerState(&s.LastTerminationState)
		}
	}
}

func (t *internTable) containerState(s *corev1.ContainerState) {
	if w := s.Waiting; w != nil {
		w.Reason, w.Message = t.of(w.Reason), t.of(w.Message)
	}
	if x := s.Terminated; x != nil {
		x.Reason, x.Message = t.of(x.Reason), t.of(x.Message)
	}
}

func (t *internTable) replicaSet(rs *appsv1.ReplicaSet) {
	t.referredMeta(&rs.ObjectMeta)
	t.meta(&rs.Spec.Template.ObjectMeta)
	t.selector(rs.Spec.Selector)
	for i := range rs.Status.Conditions {
		c := &rs.Status.Conditions[i]
		c.Type, c.Status, c.Reason = shared(t, c.Type), shared(t, c.Status), t.of(c.Reason)
	}
}

func (t *internTable) deployment(d *appsv1.Deployment) {
	t.referredMeta(&d.ObjectMeta)
	t.meta(&d.Spec.Template.ObjectMeta)
	t.selector(d.Spec.Selector)
	t.containers(d.Spec.Template.Spec.Containers)
	// Not the messages: each names the Deployment's own ReplicaSet.
	for i := range d.Status.Conditions {
		c := &d.Status.Conditions[i]
		c.Type, c.Status, c.Reason = shared(t, c.Type), shared(t, c.Status), t.of(c.Reason)
	}
}

func (t *internTable) job(j *batchv1.Job) {
	t.referredMeta(&j.ObjectMeta)
	for i := range j.Status.Conditions {
		c := &j.Status.Conditions[i]
		c.Type, c.Status = shared(t, c.Type), shared(t, c.Status)
		c.Reason, c.Message = t.of(c.Reason), t.of(c.Message)
	}
}

func (t *internTable) service(s *corev1.Service) {
	t.referredMeta(&s.ObjectMeta)
	spec := &s.Spec
	spec.Selector = t.stringMap(spec.Selector)
	spec.Type = shared(t, spec.Type)
	spec.SessionAffinity = shared(t, spec.SessionAffinity)
	for i := range spec.IPFamilies {
		spec.IPFamilies[i] = shared(t, spec.IPFamilies[i])
	}
	for i := range spec.Ports {
		p := &spec.Ports[i]
		p.Name = t.of(p.Name)
		p.Protocol = shared(t, p.Protocol)
		p.TargetPort.StrVal = t.of(p.TargetPort.StrVal)
		t.ptr(p.AppProtocol)
	}
}

func (t *internTable) endpointSlice(s *discoveryv1.EndpointSlice) {
	t.meta(&s.ObjectMeta)
	s.AddressType = shared(t, s.AddressType)
	for i := range s.Endpoints {
		e := &s.Endpoints[i]
		t.ptr(e.NodeName)
		t.ptr(e.Zone)
		if r := e.TargetRef; r != nil {
			r.Kind, r.Namespace = t.of(r.Kind), t.of(r.Namespace)
		}
	}
	for i := range s.Ports {
		p := &s.Ports[i]
		t.ptr(p.Name)
		t.ptr(p.AppProtocol)
		if p.Protocol != nil {
			*p.Protocol = shared(t, *p.Protocol)
		}
	}
}

// release interns a release's status records: each revision's job names, backup file,
// image and revision recur across history, revisions, lastBackup and the Jobs' own
// labels and annotations, and the status is decoded anew on every status write.
func (t *internTable) release(r *deployv1alpha1.SoftFactoryRelease) {
	t.referredMeta(&r.ObjectMeta)
	r.Spec.Image = t.of(r.Spec.Image)
	s := &r.Status
	s.Phase, s.ActiveColor = shared(t, s.Phase), shared(t, s.ActiveColor)
	s.ActiveImage, s.CurrentRevision, s.StableRevision = t.of(s.ActiveImage), t.of(s.CurrentRevision), t.of(s.StableRevision)
	t.conditions(s.Conditions)
	if b := s.LastBackup; b != nil {
		b.JobName, b.File, b.Revision = t.of(b.JobName), t.of(b.File), t.of(b.Revision)
	}
	if m := s.LastMigration; m != nil {
		m.JobName, m.Revision = t.of(m.JobName), t.of(m.Revision)
	}
	for i := range s.History {
		h := &s.History[i]
		h.Revision, h.Image, h.BackupFile = t.of(h.Revision), t.of(h.Image), t.of(h.BackupFile)
		h.Color, h.Outcome = shared(t, h.Color), shared(t, h.Outcome)
		h.Reason = t.of(h.Reason)
	}
	for i := range s.Revisions {
		rev := &s.Revisions[i]
		rev.Revision = t.of(rev.Revision)
		for _, step := range []*deployv1alpha1.StepRecord{rev.Backup, rev.Migration, rev.ContractBackup, rev.Contract} {
			t.step(step)
		}
		if r := rev.Restore; r != nil {
			r.Phase, r.ServingColor = shared(t, r.Phase), shared(t, r.ServingColor)
			t.step(r.Job)
		}
		for j := range rev.Retries {
			x := &rev.Retries[j]
			x.Request, x.Reason = t.of(x.Request), t.of(x.Reason)
		}
	}
}

func (t *internTable) step(s *deployv1alpha1.StepRecord) {
	if s == nil {
		return
	}
	s.JobName, s.State, s.File = t.of(s.JobName), shared(t, s.State), t.of(s.File)
	s.PodReason = t.of(s.PodReason)
}
