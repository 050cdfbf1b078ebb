use hee_core::*;
use hee_core::aprime::*;
use hee_core::quadrature::*;
use rand::SeedableRng;
fn main() -> Result<()> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let energies = [BaseEnergy::gaussian(1.0), BaseEnergy::SmoothLaplace{sigma:1.0, lambda:2.0, delta:0.1}, BaseEnergy::SmoothLaplace{sigma:1.5, lambda:1.0, delta:0.3}, BaseEnergy::StudentT{sigma:1.8, weight:1.5, nu:1.0}, BaseEnergy::StudentT{sigma:1.0, weight:1.0, nu:4.0}];
    for e in energies { for eta in [-2.0, 0.0, 0.7, 3.0] { for h in [0.01, 0.005] {
        let q = unit_moments(&e, eta)?;
        let t0 = std::time::Instant::now();
        let avg = interneuron_time_average(&e, eta, h, &InterneuronConfig::default(), 200, 200_000, &mut rng)?;
        println!("{} eta {eta} h {h}: quad {:.5} sd {:.4} inter {:.5} err/sd {:.4} curv*he {:.3} {:?}", e.name(), q.mean, q.variance.sqrt(), avg, (avg-q.mean)/q.variance.sqrt(), e.max_curvature()*h/(20.0*0.01), t0.elapsed());
    }}}
    Ok(())
}
