from grokscope.train.schedule import Schedule, ScheduleSpec, linear_grid, log_grid


def test_log_grid_has_twenty_points_per_decade_from_step_one():
    grid = log_grid(10_000, 20)
    assert 0 in grid and 1 in grid and 10 in grid and 100 in grid and 10_000 in grid
    assert len([s for s in grid if 1000 <= s < 10_000]) == 20
    assert max(grid) <= 10_000


def test_linear_grid_is_every_budget_over_points():
    assert linear_grid(1000, 100) == set(range(0, 1001, 10))
    assert linear_grid(7, 100) == set(range(8))
    assert 1001 in linear_grid(1001, 100)


def test_sparse_and_final_are_inside_every_and_extra_steps_are_added():
    schedule = Schedule(ScheduleSpec(extra_steps=[333, 99999]), budget=3000)
    assert schedule.sparse <= schedule.every
    assert schedule.final == {3000} and 3000 in schedule.every
    assert 333 in schedule.every and 99999 not in schedule.every
    assert len(schedule.sparse) < len(schedule.every) / 2
    assert schedule.steps_for([5, 7, 5000]) == {5, 7}
    assert schedule.steps_for("sparse") == schedule.sparse
