use hee_core::*;
use hee_core::linear_gaussian::*;
use hee_core::moments::*;
use rand::SeedableRng;
use faer::Mat;
fn main() -> Result<()> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let specs: Vec<LayerSpec> = [8usize, 6, 4].iter().map(|&n| LayerSpec{size:n, energy: BaseEnergy::gaussian(1.0)}).collect();
    let mut m = HeeModel::<f32>::new(&specs, Nonlinearity::Identity)?;
    m.randomize_weights(&mut rng, 1.0);
    let lg = LinearGaussian::from_model(&m)?;
    let x0 = vec![0.5f64; 8];
    let post = lg.posterior(&x0)?;
    let lam = lg.precision();
    let ev = lam.self_adjoint_eigenvalues(faer::Side::Lower).unwrap();
    let lmax = ev.iter().cloned().fold(0./0., f64::max);
    for ap in [APrime::Analytic, APrime::Interneurons(InterneuronConfig::default())] {
        let mut cfg = NeuralConfig::new(0.1/lmax, 1.0); cfg.a_prime = ap;
        let rec = MomentRecursion::new(&lg, &cfg, KernelKind::Plain, &x0)?;
        let st = rec.stationary_latents()?;
        let b = 2000;
        let kern = Langevin::new(cfg)?;
        let mut streams = RowStreams::new(7, b);
        let data = Mat::<f32>::from_fn(b, 8, |_, j| x0[j] as f32);
        let t0 = std::time::Instant::now();
        let mut state = kern.init(&m, Some(data.as_ref()), None, b, &mut streams)?;
        let mut ws = Workspace::new(&m, b, cfg.chunk);
        for _ in 0..3000 { kern.step(&m, &mut streams, &mut state, &mut ws)?; }
        let d = lg.latent_dim();
        let samples = Mat::<f64>::from_fn(b, d, |r, c| state.x[(8 + c, r)] as f64);
        let (mean, cov) = sample_moments(samples.as_ref());
        let mut num=0.0; let mut den=0.0; for i in 0..d { for j in 0..d { num += (cov[(i,j)]-st.cov[(i,j)]).powi(2); den += st.cov[(i,j)].powi(2);} }
        let me: f64 = mean.iter().zip(&st.mean).map(|(a,b)| (a-b).abs()).fold(0.0, f64::max);
        println!("{ap:?} sampled vs stationary: mean max err {me:.4}, cov rel {:.4}; stationary kl to exact {:.5}; time {:?}", (num/den).sqrt(), st.kl_to(&post)?, t0.elapsed());
    }
    Ok(())
}
