package jenkinstest

import "fmt"

// Schedule queues a build of job as userID would by pressing Build: with
// the job's quiet period, the parameters given (the job's defaults for the
// others), folded into an identical item already queued as Jenkins's
// Queue.schedule2 does. It returns the queue item's id. It is for setting
// up a scene (the demo's queue, a test's) without an HTTP request; no
// permission is checked.
func (s *Server) Schedule(job, userID string, params map[string]any) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.advance()
	j, err := s.job(job)
	if err != nil {
		return 0, fmt.Errorf("jenkinstest: schedule %q: %w", job, err)
	}
	var values []paramValue
	if len(j.spec.Params) > 0 {
		if values, err = buildParams(j, params); err != nil {
			return 0, fmt.Errorf("jenkinstest: schedule %q: %w", job, err)
		}
	} else if len(params) > 0 {
		return 0, fmt.Errorf("jenkinstest: schedule %q: %w: the job has no parameters", job, ErrInvalidSpec)
	}
	c := s.causeFor(userID)
	q, _ := s.enqueue(j, values, c, s.quietPeriodOf(j), now)
	return q.id, nil
}
