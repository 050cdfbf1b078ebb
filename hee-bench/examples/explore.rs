use hee_bench::experiments::linear::*;
use hee_core::moments::*;
use hee_core::*;
use hee_eval::diagnostics::moment_errors;
fn main() {
    for kappa in [10.0, 100.0, 1000.0] {
        let p = conditioned_problem(32, kappa, 1).unwrap();
        let start = far_start(&p, 10.0);
        for hf in [0.1] { for cf in [1.4f64, 2.0] {
            let mut cfg = NeuralConfig::new(hf / p.lambda_max, 1.0);
            cfg.a_prime = APrime::Analytic;
            let sv = cf * (cfg.h() * p.lambda_min).sqrt(); let ad = Adaptation::new(cfg, sv / p.lambda_min, (1.0+sv).powi(2)/(4.0*sv) - 1.0).unwrap();
            for (name, kind) in [("plain", KernelKind::Plain), ("adapt", KernelKind::Adaptation { tau_a: ad.tau_a, g: ad.g })] {
                let rec = MomentRecursion::new(&p.exact_model, &cfg, kind, &p.x0).unwrap();
                let st = rec.stationary_latents().unwrap();
                let bias = st.kl_to(&p.posterior).unwrap();
                let (mut m, mut c) = rec.init_moments(&start);
                let mut hit = None;
                for t in 1..400_000u64 {
                    (m, c) = rec.step.propagate(&m, &c);
                    if t % 10 == 0 || hit.is_none() {
                        let (lm, lc) = rec.latent_part(&m, &c);
                        if t % 10 != 0 { continue; }
                        let kl = moment_errors(&lm, &lc, &p.posterior).map(|e| e.kl).unwrap_or(f64::INFINITY);
                        if kl <= 0.05 { hit = Some(t); break; }
                    }
                }
                println!("kappa {kappa} c {cf} {name}: tau_a {:.2} g {:.2} bias {bias:.5} steps {:?}", ad.tau_a, ad.g, hit);
            }
        }}
    }
}
